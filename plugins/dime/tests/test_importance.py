"""The numpy core: mask size, PRF and oracle formulas against hand-written references."""

from __future__ import annotations

import math

import numpy as np
import pytest
from embedlab_dime import keep_count, masked_scores, oracle_importance, prf_importance, top_mask

from embedlab.errors import InvalidInputError


@pytest.mark.parametrize("dim", [1, 7, 384])
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.25, 0.5, 0.77, 1.0])
def test_mask_keeps_ceil_alpha_d_largest(dim, alpha):
    rng = np.random.default_rng(dim)
    importance = rng.normal(size=(5, dim))
    mask = top_mask(importance, alpha)
    expected = max(1, math.ceil(alpha * dim))
    assert keep_count(dim, alpha) == expected
    assert np.all(mask.sum(axis=1) == expected)
    for row, kept in zip(importance, mask):
        assert row[kept].min() >= row[~kept].max(initial=-np.inf)


@pytest.mark.parametrize("alpha", [0, -0.1, 1.01, 2, True, "0.5", None, float("nan")])
def test_keep_fraction_outside_unit_interval_is_an_error(alpha):
    with pytest.raises(InvalidInputError, match=r"keep_fraction must be a number in \(0, 1\]"):
        top_mask(np.ones((1, 4)), alpha)


def test_prf_is_query_times_feedback_centroid():
    rng = np.random.default_rng(0)
    q, docs = rng.normal(size=(3, 6)), rng.normal(size=(3, 4, 6))
    valid = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 0, 0, 0]], dtype=bool)
    out = prf_importance(q, docs, valid)
    np.testing.assert_allclose(out[0], q[0] * docs[0].mean(axis=0))
    np.testing.assert_allclose(out[1], q[1] * docs[1, :2].mean(axis=0))
    np.testing.assert_array_equal(out[2], 0)


def test_oracle_is_pearson_of_labels_and_interactions():
    """Reference: the research code's loop of ``np.corrcoef(relevance, itx[:, j])``."""
    rng = np.random.default_rng(1)
    q, docs, labels = rng.normal(size=8), rng.normal(size=(12, 8)), rng.integers(0, 3, size=12)
    docs[:, 5] = 0.0  # a constant interaction: correlation undefined, importance 0
    out = oracle_importance(q, docs, labels)
    itx = q * docs
    expected = [0.0 if j == 5 else np.corrcoef(labels, itx[:, j])[0, 1] for j in range(8)]
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_oracle_with_constant_labels_is_an_error():
    with pytest.raises(InvalidInputError, match="query 'q7'.*two different grades"):
        oracle_importance(np.ones(3), np.ones((4, 3)), np.ones(4), query_id="q7")


def test_masked_scores_zero_only_the_query():
    rng = np.random.default_rng(2)
    q, docs = rng.normal(size=(2, 5)).astype(np.float32), rng.normal(size=(2, 3, 5)).astype(np.float32)
    before = docs.copy()
    mask = np.array([[1, 0, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)
    out = masked_scores(q, mask, docs)
    np.testing.assert_array_equal(docs, before)
    np.testing.assert_allclose(out[0], docs[0][:, [0, 2]] @ q[0, [0, 2]], rtol=1e-6)
    np.testing.assert_allclose(out[1], docs[1] @ q[1], rtol=1e-6)
