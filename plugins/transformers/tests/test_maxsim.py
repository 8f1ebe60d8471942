"""The MaxSim reranker against a naive late-interaction computation."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_transformers import MaxSim, MiniLMTokens

from embedlab import Corpus, Queries, Ranking
from embedlab.errors import InvalidInputError


@pytest.fixture(scope="module")
def setup(scifact):
    """5 test claims; candidates = their relevant abstract placed last behind 5 unrelated ones."""
    qrels = scifact.qrels["test"]
    query_ids = sorted(qrels)[:5]
    relevant = [next(iter(qrels[q])) for q in query_ids]
    others = [d for d in scifact.corpus.ids.tolist()[:40] if d not in relevant][:5]
    doc_ids = relevant + others
    rows = [scifact.corpus.position[d] for d in doc_ids]
    corpus = Corpus(doc_ids, [scifact.corpus.texts[r] for r in rows], [scifact.corpus.titles[r] for r in rows])
    queries = scifact.queries.select(query_ids)
    ranking = Ranking(query_ids, [others + [rel] for rel in relevant],
                      np.tile(np.arange(6, 0, -1, dtype=float), (5, 1)))
    return corpus, queries, ranking, relevant


def naive_maxsim(query: np.ndarray, doc: np.ndarray) -> float:
    return float(sum(max(float(q @ d) for d in doc) for q in query))


def test_reranks_like_a_naive_maxsim(setup, opts):
    corpus, queries, ranking, relevant = setup
    reranker = MaxSim(**opts)
    result = reranker.rerank(ranking, queries, corpus)
    tokens = MiniLMTokens(**opts)
    q_vectors = tokens.encode_queries(list(queries.texts))
    d_vectors = tokens.encode_documents(corpus.documents())
    for i, qid in enumerate(ranking.query_ids):
        assert result.query_ids[i] == qid
        expected = {d: naive_maxsim(q_vectors.item(i), d_vectors.item(corpus.position[d])) for d in ranking.doc_ids[i]}
        assert set(result.doc_ids[i]) == set(expected)
        np.testing.assert_allclose(result.scores[i], [expected[d] for d in result.doc_ids[i]], rtol=1e-5)
        assert (np.diff(result.scores[i]) <= 0).all()
    # every relevant abstract was last; late interaction lifts each one to the top
    assert result.doc_ids[:, 0].tolist() == relevant


def test_caches_documents_and_keeps_top_k(setup, opts):
    corpus, queries, ranking, _ = setup
    reranker = MaxSim(k=3, keep_tail=False, **opts)
    calls = []
    encode = reranker.encoder.encode_documents
    reranker.encoder.encode_documents = lambda texts: calls.append(len(texts)) or encode(texts)
    first = reranker.rerank(ranking, queries, corpus)
    second = reranker.rerank(ranking, queries, corpus)
    assert first.k == 3 and calls == [3]  # the 3 distinct documents of the top 3s, encoded once
    np.testing.assert_array_equal(first.doc_ids, second.doc_ids)
    assert set(first.doc_ids[0]) == set(ranking.doc_ids[0, :3])


def test_padding_and_errors(setup, opts):
    corpus, queries, ranking, _ = setup
    reranker = MaxSim(**opts)
    padded = Ranking(ranking.query_ids[:1], [[ranking.doc_ids[0, 0], "", ""]], [[1.0, -np.inf, -np.inf]])
    out = reranker.rerank(padded, queries, corpus)
    assert out.doc_ids[0].tolist() == [ranking.doc_ids[0, 0], "", ""] and np.isinf(out.scores[0, 1:]).all()
    with pytest.raises(InvalidInputError, match="not in the corpus"):
        reranker.rerank(Ranking(ranking.query_ids[:1], [["no-such-doc"]], [[1.0]]), queries, corpus)
    with pytest.raises(InvalidInputError, match="not in the queries"):
        reranker.rerank(Ranking(["no-such-query"], ranking.doc_ids[:1], ranking.scores[:1]),
                        Queries(queries.ids, queries.texts), corpus)


def test_disk_cache_makes_a_rerun_encode_nothing(setup, opts, tmp_path):
    from embedlab.cache import EmbeddingCache

    corpus, queries, ranking, _ = setup
    first = MaxSim(k=4, **opts)
    first.use_cache(EmbeddingCache(tmp_path))
    expected = first.rerank(ranking, queries, corpus)
    again = MaxSim(k=4, **opts)
    again.use_cache(EmbeddingCache(tmp_path))
    calls = []
    again.encoder.encode_documents = lambda texts: calls.append(len(texts))
    again.encoder.encode_queries = lambda texts: calls.append(len(texts))
    result = again.rerank(ranking, queries, corpus)
    assert calls == []
    np.testing.assert_array_equal(result.doc_ids, expected.doc_ids)
    np.testing.assert_allclose(result.scores, expected.scores)


def test_tail_follows_the_reranked_head_in_first_stage_order(setup, opts):
    corpus, queries, ranking, _ = setup
    result = MaxSim(k=2, **opts).rerank(ranking, queries, corpus)
    assert result.k == ranking.k
    for i in range(len(ranking)):
        assert set(result.doc_ids[i, :2]) == set(ranking.doc_ids[i, :2])
        assert result.doc_ids[i, 2:].tolist() == ranking.doc_ids[i, 2:].tolist()
        assert (np.diff(result.scores[i]) <= 0).all()
        assert result.scores[i, 2:].max() < result.scores[i, :2].min()


def test_long_document_ids_rerank_the_same(setup, opts):
    """Ids longer than 15 bytes live outside numpy's variable-width string slots, where numpy's
    searchsorted returned wrong positions: the reranker must not depend on it."""
    corpus, queries, ranking, relevant = setup
    long = {d: f"scifact-abstract-number-{d}" for d in corpus.ids.tolist()}
    long_corpus = Corpus([long[d] for d in corpus.ids.tolist()], corpus.texts, corpus.titles)
    long_ranking = Ranking(ranking.query_ids, [[long[d] for d in row] for row in ranking.doc_ids.tolist()],
                           ranking.scores)
    short = MaxSim(**opts).rerank(ranking, queries, corpus)
    result = MaxSim(**opts).rerank(long_ranking, queries, long_corpus)
    assert result.doc_ids.tolist() == [[long[d] for d in row] for row in short.doc_ids.tolist()]
    np.testing.assert_allclose(result.scores, short.scores, rtol=1e-6)
