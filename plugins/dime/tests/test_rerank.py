"""Reranking: keep-fraction 1 = the exact index, hand-computed masked scores, oracle sanity, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError
from embedlab.metrics import evaluate
from embedlab.ranking import Ranking


def ndcg(ranking: Ranking, qrels) -> float:
    return float(evaluate(ranking, qrels, ["nDCG@10"]).aggregates["nDCG@10"])


@pytest.mark.parametrize("estimator", ["prf", "oracle"])
def test_keep_one_reproduces_the_exact_index(make, dataset, encoder, doc_vectors, test_ranking, estimator):
    """Reference: core exact index (inner product) over the whole slice, same queries, top 30."""
    queries = dataset.split("test").queries
    index = embedlab.create("index", "exact")
    index.build(doc_vectors)
    result = index.search(encoder.encode_queries(list(queries.texts[:len(test_ranking)])), k=30)
    exact = Ranking.from_search(test_ranking.query_ids, result, dataset.corpus.ids)
    shuffled = Ranking(exact.query_ids, exact.doc_ids[:, ::-1], exact.scores[:, ::-1])
    reranker = make(estimator=estimator, keep_fraction=1.0, depth=30).use_qrels(dataset.split("test").qrels)
    out = reranker.rerank(shuffled, queries, dataset.corpus)
    np.testing.assert_array_equal(out.doc_ids, exact.doc_ids)
    np.testing.assert_allclose(out.scores, exact.scores, rtol=1e-5, atol=1e-6)


def test_masked_scores_match_a_hand_computed_prf_dime(make, dataset, encoder, doc_vectors, test_ranking):
    queries = dataset.split("test").queries
    reranker = make(keep_fraction=0.3, prf_docs=4, depth=20)
    before = doc_vectors.copy()
    out = reranker.rerank(test_ranking, queries, dataset.corpus)
    np.testing.assert_array_equal(doc_vectors, before)  # documents are never masked
    np.testing.assert_array_equal(reranker._corpus_vectors, before)
    position = dataset.corpus.position
    for i in (0, 9):
        q = encoder.encode_queries([queries.texts[i]])[0]
        docs = doc_vectors[[position[d] for d in test_ranking.doc_ids[i, :20]]]
        importance = q * docs[:4].mean(axis=0)
        kept = np.argsort(-importance, kind="stable")[:116]  # ceil(0.3 * 384)
        masked = np.zeros_like(q)
        masked[kept] = q[kept]
        scores = docs @ masked
        order = np.argsort(-scores, kind="stable")
        assert list(out.doc_ids[i, :20]) == list(test_ranking.doc_ids[i, :20][order])
        np.testing.assert_allclose(out.scores[i, :20], scores[order], rtol=1e-4, atol=1e-5)
        assert list(out.doc_ids[i, 20:]) == list(test_ranking.doc_ids[i, 20:])  # tail kept


def test_oracle_at_half_the_dimensions_beats_full_dimensions(make, dataset, test_ranking):
    """The oracle peeks at the labels, so on the same queries it must rank better (DIME's sanity check)."""
    split = dataset.split("test")
    full = ndcg(make(keep_fraction=1.0).rerank(test_ranking, split.queries, dataset.corpus), split.qrels)
    oracle = make(estimator="oracle", keep_fraction=0.5).use_qrels(split.qrels)
    masked = ndcg(oracle.rerank(test_ranking, split.queries, dataset.corpus), split.qrels)
    assert masked > full + 0.05


def test_without_a_cache_only_the_candidates_are_encoded(dataset, test_ranking, make, quiet):
    reranker = embedlab.create("reranker", "dime", encoder_params=quiet, keep_fraction=0.4, depth=8)
    encoded: list[int] = []
    method = reranker.encoder.encode_documents
    reranker.encoder.encode_documents = lambda texts: encoded.append(len(texts)) or method(texts)
    ranking = test_ranking.truncate(12)
    ranking = Ranking(ranking.query_ids[:5], ranking.doc_ids[:5], ranking.scores[:5])
    queries = dataset.split("test").queries
    out = reranker.rerank(ranking, queries, dataset.corpus)
    assert encoded == [len(np.unique(ranking.doc_ids[:, :8]))]
    cached = make(keep_fraction=0.4, depth=8).rerank(ranking, queries, dataset.corpus)
    np.testing.assert_array_equal(out.doc_ids, cached.doc_ids)
    np.testing.assert_allclose(out.scores, cached.scores, rtol=1e-4, atol=1e-5)


def test_pipeline_with_keep_one_equals_the_pipeline_without_reranker(cache, dataset, quiet):
    queries = dataset.split("test").queries
    queries = queries.select(queries.ids[:8].tolist())
    rankings = []
    for reranker in (None, {"name": "dime", "keep_fraction": 1.0, "depth": 20, "encoder_params": quiet}):
        pipeline = embedlab.Pipeline.from_names(encoder={"name": "minilm", **quiet}, index="exact",
                                                reranker=reranker, cache=cache)
        pipeline.build(dataset.corpus)
        rankings.append(pipeline.search(queries, k=20))
    np.testing.assert_array_equal(rankings[0].doc_ids, rankings[1].doc_ids)
    masked = embedlab.Pipeline.from_names(encoder={"name": "minilm", **quiet}, index="exact", cache=cache,
                                          reranker={"name": "dime", "keep_fraction": 0.2, "depth": 20,
                                                    "encoder_params": quiet})
    masked.build(dataset.corpus)
    assert not np.array_equal(masked.search(queries, k=20).doc_ids, rankings[0].doc_ids)


def test_missing_documents_queries_and_labels_are_clear_errors(make, dataset, test_ranking):
    queries = dataset.split("test").queries
    bad = test_ranking.doc_ids.copy()
    bad[0, 3] = "no-such-document"
    with pytest.raises(InvalidInputError, match="not in the corpus.*no-such-document"):
        make().rerank(Ranking(test_ranking.query_ids, bad, test_ranking.scores), queries, dataset.corpus)
    ids = test_ranking.query_ids.copy()
    ids[0] = "no-such-query"
    with pytest.raises(InvalidInputError, match="not in the queries"):
        make().rerank(Ranking(ids, test_ranking.doc_ids, test_ranking.scores), queries, dataset.corpus)
    with pytest.raises(NotFittedError, match="use_qrels"):
        make(estimator="oracle").rerank(test_ranking, queries, dataset.corpus)
    qrels = dict(dataset.split("test").qrels)
    missing = qrels.pop(test_ranking.query_ids[2])
    assert missing
    with pytest.raises(InvalidInputError, match=f"query '{test_ranking.query_ids[2]}' has no relevance labels"):
        make(estimator="oracle").use_qrels(qrels).rerank(test_ranking, queries, dataset.corpus)
    with pytest.raises(InvalidInputError, match="non-empty mapping"):
        make(estimator="oracle").use_qrels({})
    with pytest.raises(NotFittedError, match="fit"):
        make(estimator="learned").rerank(test_ranking, queries, dataset.corpus)


def test_padding_stays_at_the_bottom(make, dataset, test_ranking):
    ids, scores = test_ranking.doc_ids[:, :6].copy(), test_ranking.scores[:, :6].copy()
    ids[:, 4:], scores[:, 4:] = "", -np.inf
    out = make(keep_fraction=0.5).rerank(Ranking(test_ranking.query_ids, ids, scores),
                                         dataset.split("test").queries, dataset.corpus)
    assert np.all(out.doc_ids[:, 4:] == "") and np.all(np.isneginf(out.scores[:, 4:]))
    assert [sorted(r[:4]) for r in out.doc_ids.tolist()] == [sorted(r[:4]) for r in ids.tolist()]


@pytest.mark.parametrize("params", [{"keep_fraction": 0}, {"keep_fraction": 1.5}, {"keep_fraction": -0.2},
                                    {"keep_fraction": True}, {"keep_fraction": "half"}, {"estimator": "gpt"},
                                    {"prf_docs": 0}, {"depth": True}, {"temperature": 0},
                                    {"validation_fraction": 1.0}, {"encoder": "no-such-encoder"}, {"unknown": 1}])
def test_bad_parameters_are_config_errors(params):
    with pytest.raises((ConfigError, embedlab.errors.UnknownComponentError)):
        embedlab.create("reranker", "dime", **params)
