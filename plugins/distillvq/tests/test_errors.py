"""Bad input: too few vectors, indivisible dimension, dtype/layout, NaN, bad config, unfitted."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_distillvq import DistillVQIndex

from embedlab.errors import ConfigError, InvalidInputError, NotFittedError


def test_fewer_vectors_than_centroids_says_how_many(data, small):
    with pytest.raises(InvalidInputError, match=r"at least 16 training vectors.*got 10"):
        small().fit(data[0][:10])
    with pytest.raises(InvalidInputError, match=r"at least 64 training vectors.*got 40"):
        small(nlist=4, ksub=64).fit(data[0][:40])


def test_dimension_not_divisible_by_m(data, small):
    with pytest.raises(ConfigError, match=r"not divisible by m=5.*choose m among"):
        small(m=5).fit(data[0])


def test_float64_and_non_contiguous_are_accepted(data, small):
    docs = data[0]
    reference = small(epochs=0)
    reference.build(docs)
    wide = np.asfortranarray(docs.astype(np.float64))
    other = small(epochs=0)
    other.build(wide)
    np.testing.assert_array_equal(other.codes, reference.codes)
    strided = np.repeat(docs, 2, axis=1)[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(reference.search(strided[:5], 3).indices, reference.search(docs[:5], 3).indices)


def test_nan_rejected_with_row_index(data, small):
    docs = data[0].copy()
    docs[123, 4] = np.nan
    with pytest.raises(InvalidInputError, match="row 123"):
        small().fit(docs)
    with pytest.raises(InvalidInputError, match="row 1 "):
        small().fit(data[0], train_queries=np.array([[0.0] * 32, [np.inf] * 32]))


def test_bad_config_and_arguments(data, small):
    with pytest.raises(ValueError, match="power of two"):
        DistillVQIndex(ksub=100)
    with pytest.raises(ValueError):
        DistillVQIndex(nlist=0)
    with pytest.raises(NotFittedError):
        DistillVQIndex().search(data[1], 3)
    index = small(epochs=0)
    index.build(data[0])
    with pytest.raises(InvalidInputError, match="k must be"):
        index.search(data[1], 0)
    with pytest.raises(InvalidInputError, match="dimension"):
        index.search(np.ones((2, 8)), 3)
    with pytest.raises(InvalidInputError, match="attribute"):
        index.add(data[0][:3], attributes={"x": np.arange(2)})
