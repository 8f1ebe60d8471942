"""The streaming top-k of the exact index against a full sort: ties, filtered entries, block shapes."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab.index.topk import TopK, _nonzero, _pack, _unpack
from embedlab.ranking import MISSING_SCORE


@pytest.fixture(autouse=True, params=[False, True], ids=["numpy", "numba"])
def accelerate(request, monkeypatch):
    """Every test runs on the numpy path and on the optional numba kernel (when numba is installed)."""
    import embedlab.index.topk as topk

    if request.param:
        pytest.importorskip("numba")
    monkeypatch.setattr(topk, "ACCELERATE", request.param)
    assert (topk._selection_kernel() is not None) == request.param
    return request.param


def reference_top(scores: np.ndarray, positions: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full sort per row: descending score, ascending position; -inf entries never returned."""
    best_scores = np.full((scores.shape[0], k), MISSING_SCORE, np.float32)
    best_positions = np.full((scores.shape[0], k), -1, np.int64)
    for row, values in enumerate(scores):
        order = np.lexsort((positions, -values))
        order = order[values[order] > MISSING_SCORE][:k]
        best_scores[row, :order.size], best_positions[row, :order.size] = values[order], positions[order]
    return best_scores, best_positions


def streamed(scores: np.ndarray, positions: np.ndarray, k: int, block: int, batch: int,
             docs_major: bool = False) -> TopK:
    top = TopK(scores.shape[0], k)
    for start in range(0, scores.shape[1], block):
        for q0 in range(0, scores.shape[0], batch):
            part = scores[q0:q0 + batch, start:start + block]
            part = np.ascontiguousarray(part.T if docs_major else part)
            top.push(part, positions[start:start + block], slice(q0, q0 + batch), docs_major=docs_major)
    return top


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("block", [7, 512, 1024, 1536])  # 512 multiples take the span scan
@pytest.mark.parametrize("docs_major", [False, True])
def test_streamed_top_k_equals_a_full_sort(seed, block, docs_major):
    rng = np.random.default_rng(seed)
    n, n_docs, k = 8, int(rng.integers(1, 3000)), int(rng.integers(1, 40))
    if seed % 2:  # few distinct values: many ties across blocks
        scores = rng.integers(-4, 4, size=(n, n_docs)).astype(np.float32)
    else:
        scores = rng.standard_normal((n, n_docs), dtype=np.float32)
    if seed % 3 == 0:  # filtered documents
        scores[:, rng.random(n_docs) < 0.4] = MISSING_SCORE
    if seed % 4 == 0:
        scores[0] = -0.0  # signed zeros tie with zeros
        scores[0, ::3] = 0.0
    positions = np.arange(n_docs)
    top = streamed(scores, positions, k, block, batch=int(rng.integers(1, n + 1)), docs_major=docs_major)
    expected_scores, expected_positions = reference_top(scores, positions, k)
    np.testing.assert_array_equal(top.positions, expected_positions)
    np.testing.assert_array_equal(top.scores, expected_scores)


def test_positions_beyond_32_bits_merge_by_the_general_path():
    """Packed keys hold positions below 2**32 - 1; larger ones (huge corpora) are merged by the
    lexsort path, with the same order."""
    rng = np.random.default_rng(0)
    scores = rng.integers(-3, 3, size=(5, 2_000)).astype(np.float32)
    small, large = np.arange(2_000), np.arange(2_000) + (1 << 33)
    low = streamed(scores, small, 10, 512, 5)
    high = streamed(scores, large, 10, 512, 5, docs_major=True)
    np.testing.assert_array_equal(high.positions, low.positions + (1 << 33))
    np.testing.assert_array_equal(high.scores, low.scores)


def test_packed_keys_round_trip_and_sort_like_the_ranking_order():
    scores = np.array([1.5, -0.0, 0.0, -2.0, MISSING_SCORE, np.inf, 3e-40, -3e-40, 1.5], np.float32)
    positions = np.array([5, 3, 2, 7, -1, 0, 9, 10, 4])
    keys = _pack(scores, positions)
    back_scores, back_positions = _unpack(keys)
    np.testing.assert_array_equal(back_positions, positions)
    np.testing.assert_array_equal(back_scores, scores + np.float32(0))
    expected = np.lexsort((np.where(positions < 0, 1 << 40, positions), -scores))
    np.testing.assert_array_equal(np.argsort(keys, kind="stable"), expected)


@pytest.mark.parametrize("shape", [(3, 5), (4, 512), (16, 1024), (1, 4096)])
@pytest.mark.parametrize("density", [0.0, 0.001, 0.3])
def test_sparse_nonzero_equals_numpy(shape, density):
    mask = np.random.default_rng(1).random(shape) < density
    for got, expected in zip(_nonzero(mask), np.nonzero(mask)):
        np.testing.assert_array_equal(got, expected)
