"""Filtered search through IDSelectorBitmap: results equal exact search over the allowed documents."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_faiss import FaissIndex

from embedlab import ConfigError, InvalidInputError

RNG = np.random.default_rng(2)
DOCS = RNG.standard_normal((3000, 24)).astype(np.float32)
QUERIES = RNG.standard_normal((12, 24)).astype(np.float32)
ATTRIBUTES = {"year": 2000 + np.arange(3000) % 20, "lang": np.where(np.arange(3000) % 3 == 0, "en", "fr")}


def exact_masked(mask: np.ndarray, k: int) -> np.ndarray:
    """Top-k positions by inner product among documents allowed by a 1-d or 2-d mask."""
    scores = QUERIES.astype(np.float64) @ DOCS.T.astype(np.float64)
    scores[~np.broadcast_to(mask, scores.shape)] = -np.inf
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


@pytest.fixture(scope="module")
def flat():
    index = FaissIndex(factory="Flat")
    index.build(DOCS, ATTRIBUTES)
    return index


@pytest.mark.parametrize("filter, mask", [
    ({"lang": "en"}, ATTRIBUTES["lang"] == "en"),
    ({"year": {"gte": 2015}, "lang": "fr"}, (ATTRIBUTES["year"] >= 2015) & (ATTRIBUTES["lang"] == "fr")),
    (np.arange(3000) < 100, np.arange(3000) < 100),
    (lambda columns: columns["year"] == 2003, ATTRIBUTES["year"] == 2003),
], ids=["dict", "dict-and-range", "mask", "callable"])
def test_global_filters_equal_exact_masked_search(flat, filter, mask):
    result = flat.search(QUERIES, 10, filter=filter)
    np.testing.assert_array_equal(result.indices, exact_masked(mask, 10))
    assert mask[result.indices].all()


def test_per_query_filters_one_call_per_distinct_mask(flat):
    specs = [{"year": 2000 + i % 3} if i % 4 else None for i in range(12)]
    masks = np.stack([ATTRIBUTES["year"] == s["year"] if s else np.ones(3000, bool) for s in specs])
    result = flat.search(QUERIES, 10, filter=specs)
    np.testing.assert_array_equal(result.indices, exact_masked(masks, 10))
    per_query_mask = RNG.random((12, 3000)) < 0.05
    result = flat.search(QUERIES, 10, filter=per_query_mask)
    np.testing.assert_array_equal(result.indices, exact_masked(per_query_mask, 10))


def test_filter_passing_few_or_no_documents_pads(flat):
    few = np.zeros(3000, bool)
    few[[5, 77, 2999]] = True
    result = flat.search(QUERIES, 5, filter=few)
    assert (np.sort(result.indices[:, :3], axis=1) == [5, 77, 2999]).all()
    assert (result.indices[:, 3:] == -1).all() and np.isneginf(result.scores[:, 3:]).all()
    empty = flat.search(QUERIES, 5, filter={"year": 1999})
    assert (empty.indices == -1).all() and np.isneginf(empty.scores).all()


@pytest.mark.parametrize("params", [
    {"factory": "IVF32,Flat", "nprobe": 32},
    {"factory": "HNSW16", "efSearch": 200},
    {"factory": "PCA16,IVF16,SQ8", "nprobe": 16},
    {"factory": "IVF16,Flat,RFlat", "nprobe": 16},
], ids=["ivf", "hnsw", "pca-ivf-sq", "refine"])
def test_approximate_indexes_respect_filters(params):
    index = FaissIndex(**params)
    index.build(DOCS, ATTRIBUTES)
    mask = ATTRIBUTES["year"] < 2005
    result = index.search(QUERIES, 10, filter={"year": {"lt": 2005}})
    assert (result.indices >= 0).all() and mask[result.indices].all()
    if "PCA" not in params["factory"]:  # exhaustive settings: the exact filtered answer
        truth = exact_masked(mask, 10)
        assert np.mean([len(set(a) & set(b)) for a, b in zip(result.indices, truth)]) > 9


def test_unsupported_filtered_factory_says_so():
    index = FaissIndex(factory="PQ4x4")
    index.build(DOCS)
    with pytest.raises(ConfigError, match="cannot search under a filter"):
        index.search(QUERIES, 5, filter=np.arange(3000) < 10)


def test_filter_errors_come_from_the_core_resolver(flat):
    with pytest.raises(InvalidInputError, match="unknown attribute 'genre'"):
        flat.search(QUERIES, 5, filter={"genre": "jazz"})
    with pytest.raises(InvalidInputError, match="shape"):
        flat.search(QUERIES, 5, filter=np.ones(10, bool))
