"""Reranking: reference scores, permutation, order invariance, document reuse and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_e2rank import E2Rank, listwise_prompt

import embedlab
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.ranking import Ranking


def rows(ranking: Ranking) -> list[list[str]]:
    return [list(ids) for _, ids, _ in ranking]


def test_scores_are_cosines_to_the_prompt_embedding(make, dataset, encoder, test_ranking):
    """Reference computed by hand: MiniLM embedding of the prompt of the first-stage top 3, cosine
    to each candidate's MiniLM document embedding."""
    reranker = make(k=10, prompt_docs=3, doc_words=25)
    out = reranker.rerank(test_ranking, dataset.split("test").queries, dataset.corpus)
    corpus, queries = dataset.corpus, dataset.split("test").queries
    documents = corpus.documents()
    for i in (0, 7):
        query = queries.texts[list(queries.ids).index(test_ranking.query_ids[i])]
        top = [documents[corpus.position[d]] for d in test_ranking.doc_ids[i, :3]]
        prompt = encoder.encode_queries([listwise_prompt(query, top, doc_words=25)])[0]
        head = list(test_ranking.doc_ids[i, :10])
        cos = encoder.encode_documents([documents[corpus.position[d]] for d in head]) @ prompt
        expected = [head[j] for j in np.argsort(-cos, kind="stable")]
        assert list(out.doc_ids[i, :10]) == expected
        np.testing.assert_allclose(out.scores[i, :10], np.sort(cos)[::-1], atol=1e-5)


def test_output_is_a_permutation_with_the_tail_kept(make, dataset, test_ranking):
    out = make(k=10).rerank(test_ranking, dataset.split("test").queries, dataset.corpus)
    assert out.k == test_ranking.k
    for before, after in zip(rows(test_ranking), rows(out)):
        assert sorted(before[:10]) == sorted(after[:10])
        assert before[10:] == after[10:]
    head = make(k=10, keep_tail=False).rerank(test_ranking, dataset.split("test").queries, dataset.corpus)
    assert head.k == 10 and [r[:10] for r in rows(out)] == rows(head)
    assert np.all(np.diff(out.scores, axis=1) <= 0)


def test_candidate_input_order_does_not_matter(make, dataset, test_ranking):
    """The prompt takes the top documents by first-stage score, not by their column."""
    rng = np.random.default_rng(0)
    order = np.stack([rng.permutation(test_ranking.k) for _ in range(len(test_ranking))])
    shuffled = Ranking(test_ranking.query_ids, np.take_along_axis(test_ranking.doc_ids, order, 1),
                       np.take_along_axis(test_ranking.scores, order, 1))
    reranker = make(k=12, prompt_docs=4)
    queries = dataset.split("test").queries
    a = reranker.rerank(test_ranking, queries, dataset.corpus)
    b = reranker.rerank(shuffled, queries, dataset.corpus)
    assert rows(a) == rows(b)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
    changed = make(k=12, prompt_docs=4).rerank(
        Ranking(test_ranking.query_ids, test_ranking.doc_ids, -test_ranking.scores), queries, dataset.corpus)
    assert rows(changed) != rows(a)  # the first-stage scores do choose the prompt documents


def count_calls(reranker: E2Rank) -> dict[str, int]:
    calls = {"queries": 0, "documents": 0}
    for role in calls:
        method = getattr(reranker.encoder, f"encode_{role}")

        def counted(texts, method=method, role=role):
            calls[role] += 1
            return method(texts)
        setattr(reranker.encoder, f"encode_{role}", counted)
    return calls


def test_pipeline_reuses_the_first_stage_document_embeddings(cache, dataset, quiet):
    """The pipeline's document embeddings (here already in the session cache: its build is a hit)
    are the reranker's: it encodes one batch of prompts and no documents."""
    pipeline = embedlab.Pipeline.from_names(encoder={"name": "minilm", **quiet}, index="exact",
                                            reranker={"name": "e2rank", "k": 10, "doc_words": 15,
                                                      "encoder_params": quiet}, cache=cache)
    calls = count_calls(pipeline.reranker)
    pipeline.build(dataset.corpus)
    queries = dataset.split("test").queries
    queries = queries.select(queries.ids[:6].tolist())
    ranking = pipeline.search(queries, k=20)
    assert pipeline.timings.cache_hits >= 1
    assert calls == {"queries": 1, "documents": 0}
    assert len(ranking) == 6 and ranking.k == 20


def test_without_a_cache_each_document_is_encoded_once(dataset, test_ranking, quiet):
    reranker = embedlab.create("reranker", "e2rank", k=5, doc_words=15, encoder_params=quiet)
    calls = count_calls(reranker)
    encoded: list[int] = []
    method = reranker.encoder.encode_documents
    reranker.encoder.encode_documents = lambda texts: encoded.append(len(texts)) or method(texts)
    queries = dataset.split("test").queries
    first = reranker.rerank(test_ranking, queries, dataset.corpus)
    again = reranker.rerank(test_ranking, queries, dataset.corpus)
    assert encoded == [len(np.unique(test_ranking.doc_ids[:, :5]))]
    assert calls["queries"] == 2 and rows(first) == rows(again)


def test_missing_documents_and_queries_are_clear_errors(make, dataset, test_ranking):
    bad = test_ranking.doc_ids.copy()
    bad[0, 3] = "no-such-document"
    queries = dataset.split("test").queries
    with pytest.raises(InvalidInputError, match="not in the corpus.*no-such-document"):
        make().rerank(Ranking(test_ranking.query_ids, bad, test_ranking.scores), queries, dataset.corpus)
    ids = test_ranking.query_ids.copy()
    ids[0] = "no-such-query"
    with pytest.raises(InvalidInputError, match="not in the queries"):
        make().rerank(Ranking(ids, test_ranking.doc_ids, test_ranking.scores), queries, dataset.corpus)


def test_padding_stays_at_the_bottom(make, dataset, test_ranking):
    ids, scores = test_ranking.doc_ids[:, :6].copy(), test_ranking.scores[:, :6].copy()
    ids[:, 4:], scores[:, 4:] = "", -np.inf
    out = make(k=6).rerank(Ranking(test_ranking.query_ids, ids, scores), dataset.split("test").queries,
                           dataset.corpus)
    assert np.all(out.doc_ids[:, 4:] == "") and np.all(np.isneginf(out.scores[:, 4:]))
    assert [sorted(r) for r in rows(out)] == [sorted(r[:4]) for r in ids.tolist()]


@pytest.mark.parametrize("params", [{"k": 0}, {"prompt_docs": True}, {"query_weight": 1.5},
                                    {"encoder_params": [1]}, {"doc_words": -1}, {"encoder": "minilm-tokens"},
                                    {"encoder": "no-such-encoder"}, {"unknown": 1}])
def test_bad_parameters_are_config_errors(params):
    with pytest.raises((ConfigError, embedlab.errors.UnknownComponentError)):
        embedlab.create("reranker", "e2rank", **params)
