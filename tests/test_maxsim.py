"""maxsim_scores against a naive per-document loop, including empty queries and documents."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import InvalidInputError, MultiVectorEmbeddings
from embedlab.index import maxsim, maxsim_scores


def items(rng, n: int, dim: int, low: int, high: int) -> MultiVectorEmbeddings:
    return MultiVectorEmbeddings.from_list([rng.standard_normal((rng.integers(low, high), dim))
                                            for _ in range(n)], dim=dim)


def naive(queries: MultiVectorEmbeddings, docs: MultiVectorEmbeddings) -> np.ndarray:
    out = np.zeros((len(queries), len(docs)))
    for i in range(len(queries)):
        q = queries.item(i).astype(np.float64)
        for j in range(len(docs)):
            d = docs.item(j).astype(np.float64)
            if len(q):
                out[i, j] = (q @ d.T).max(axis=1).sum() if len(d) else -np.inf
    return out


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(11)
    queries = items(rng, 6, 16, 0, 7)  # some queries have no vectors
    docs = items(rng, 120, 16, 0, 9)  # some documents have no vectors
    assert (queries.counts == 0).any() and (docs.counts == 0).any()
    return queries, docs


def test_all_pairs_match_naive_loop(pair):
    queries, docs = pair
    scores = maxsim_scores(queries, docs)
    assert scores.shape == (len(queries), len(docs)) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, naive(queries, docs), rtol=1e-5, atol=1e-5)


def test_empty_documents_and_queries():
    queries = MultiVectorEmbeddings.from_list([np.ones((2, 3)), np.zeros((0, 3))])
    docs = MultiVectorEmbeddings.from_list([np.zeros((0, 3)), np.full((1, 3), 2.0), np.zeros((0, 3))])
    np.testing.assert_array_equal(maxsim_scores(queries, docs), [[-np.inf, 12, -np.inf], [0, 0, 0]])
    no_docs = MultiVectorEmbeddings.from_list([np.zeros((0, 3))] * 2)
    np.testing.assert_array_equal(maxsim_scores(queries, no_docs), [[-np.inf] * 2, [0, 0]])


def test_batching_does_not_change_scores(pair, monkeypatch):
    queries, docs = pair
    expected = maxsim_scores(queries, docs)
    monkeypatch.setattr(maxsim, "MAX_PRODUCT", 40)
    monkeypatch.setattr(maxsim, "_QUERY_VECTORS", 5)
    np.testing.assert_allclose(maxsim_scores(queries, docs), expected, rtol=1e-6)


def test_candidates_match_full_matrix(pair):
    queries, docs = pair
    rng = np.random.default_rng(12)
    candidates = rng.integers(0, len(docs), (len(queries), 15))
    candidates[0, 3] = candidates[2, :] = -1
    full = naive(queries, docs)
    scores = maxsim_scores(queries, docs, candidates)
    assert scores.shape == candidates.shape
    expected = np.where(candidates >= 0, np.take_along_axis(full, np.maximum(candidates, 0), axis=1), -np.inf)
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-5)
    assert np.isneginf(scores[2]).all()


def test_invalid_inputs(pair):
    queries, docs = pair
    other = MultiVectorEmbeddings.from_list([np.ones((2, 4))])
    with pytest.raises(InvalidInputError, match="dimension 16, document vectors have dimension 4"):
        maxsim_scores(queries, other)
    with pytest.raises(InvalidInputError, match="must be MultiVectorEmbeddings"):
        maxsim_scores(queries, docs.vectors)
    with pytest.raises(InvalidInputError, match=r"shape \(6, c\)"):
        maxsim_scores(queries, docs, np.zeros((2, 3), np.int64))
    with pytest.raises(InvalidInputError, match=r"shape \(6, c\)"):
        maxsim_scores(queries, docs, np.zeros((6, 3), np.float32))
    with pytest.raises(InvalidInputError, match=r"\[0, 120\) or be -1"):
        maxsim_scores(queries, docs, np.full((6, 2), 120))
