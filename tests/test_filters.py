"""resolve_filter in every accepted form, and filtered exact search against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import InvalidInputError
from embedlab.filters import resolve_filter
from embedlab.index import ExactIndex

PACKAGES = np.array(["json", "csv", None, "os", "json", "csv", "json", None], dtype=object)
LENGTHS = np.array([50, 100, 250, np.nan, 499, 500, 120, 300])
ATTRIBUTES = {"package": PACKAGES, "length": LENGTHS, "year": np.array([2020, 2021, 2022, 2023] * 2),
              "kind": np.array(["a", "b"] * 4)}
N = 8


def resolve(flt, n_queries: int = 2):
    return resolve_filter(flt, ATTRIBUTES, N, n_queries)


def mask_of(*positions: int) -> np.ndarray:
    mask = np.zeros(N, dtype=bool)
    mask[list(positions)] = True
    return mask


def test_no_filter():
    assert resolve(None) is None
    assert resolve([None, None]) is None


def test_equality_skips_missing_values():
    np.testing.assert_array_equal(resolve({"package": "json"}), mask_of(0, 4, 6))
    np.testing.assert_array_equal(resolve({"package": {"eq": "csv"}}), mask_of(1, 5))
    np.testing.assert_array_equal(resolve({"year": 2021}), mask_of(1, 5))
    np.testing.assert_array_equal(resolve({"kind": "b"}), mask_of(1, 3, 5, 7))


def test_membership():
    np.testing.assert_array_equal(resolve({"package": {"in": ["json", "os"]}}), mask_of(0, 3, 4, 6))
    np.testing.assert_array_equal(resolve({"year": {"in": [2020, 2023]}}), mask_of(0, 3, 4, 7))
    np.testing.assert_array_equal(resolve({"kind": {"in": ("a",)}}), mask_of(0, 2, 4, 6))
    assert not resolve({"package": {"in": []}}).any()


def test_numeric_ranges_exclude_nan():
    np.testing.assert_array_equal(resolve({"length": {"gte": 100, "lt": 500}}), mask_of(1, 2, 4, 6, 7))
    np.testing.assert_array_equal(resolve({"length": {"gt": 100, "lte": 500}}), mask_of(2, 4, 5, 6, 7))
    assert not resolve({"length": {"gt": -1e9}})[3]  # NaN never passes
    np.testing.assert_array_equal(resolve({"year": {"gte": 2022}}), mask_of(2, 3, 6, 7))


def test_object_column_ranges_treat_none_as_missing():
    sizes = {"size": np.array([1, None, 3.5], dtype=object)}
    np.testing.assert_array_equal(resolve_filter({"size": {"lt": 4}}, sizes, 3, 1), [True, False, True])


def test_several_keys_mean_and():
    np.testing.assert_array_equal(resolve({"package": "json", "length": {"gte": 100}}), mask_of(4, 6))


def test_masks_and_callables():
    mask = mask_of(1, 2)
    assert resolve(mask) is mask
    per_query = np.zeros((2, N), dtype=bool)
    per_query[1, 3] = True
    assert resolve(per_query) is per_query
    np.testing.assert_array_equal(resolve(lambda a: a["year"] > 2021), mask_of(2, 3, 6, 7))
    assert resolve(lambda a: np.ones((2, N), bool)).shape == (2, N)


def test_per_query_list():
    result = resolve([{"package": "csv"}, None, mask_of(7), lambda a: a["kind"] == "a"], n_queries=4)
    assert result.shape == (4, N)
    np.testing.assert_array_equal(result[0], mask_of(1, 5))
    assert result[1].all()
    np.testing.assert_array_equal(result[2], mask_of(7))
    np.testing.assert_array_equal(result[3], mask_of(0, 2, 4, 6))


@pytest.mark.parametrize("flt, message", [
    ({"pkg": "json"}, r"unknown attribute 'pkg'; known attributes: kind, length, package, year"),
    ({"length": {"between": [1, 2]}}, r"unknown operator 'between'.*eq, in, gt, gte, lt, lte"),
    ({"length": {}}, "empty condition"),
    ({"package": ["json", "csv"]}, r"use \{'in': \[...\]\}"),
    ({"package": {"in": "json"}}, "needs a list of values"),
    ({"length": {"gt": "100"}}, "needs a number"),
    ({"length": "long"}, "is numeric"),
    ({"kind": 3}, "holds strings"),
    ({"kind": {"gt": 3}}, "is not numeric"),
    ({"package": {"gt": 3}}, "is not numeric"),
    (np.ones(N + 1, bool), r"shape \(9,\) does not match \(8,\) or \(2, 8\)"),
    (np.ones((3, N), bool), r"shape \(3, 8\)"),
    (np.ones(N, np.int64), "expected dtype bool"),
    (lambda a: np.ones(3, bool), "mask returned by the filter callable"),
    ([{"kind": "a"}], "one entry per query"),
    ([np.ones((2, N), bool), None], r"shape \(2, 8\) does not match \(8,\)"),
    ("kind == 'a'", "unsupported filter of type str"),
])
def test_clear_errors(flt, message):
    with pytest.raises(InvalidInputError, match=message):
        resolve(flt)


def test_unknown_attribute_without_columns():
    with pytest.raises(InvalidInputError, match="none \\(pass attributes="):
        resolve_filter({"a": 1}, {}, 3, 1)


# -- filtered search ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(7)
    n = 900
    x = rng.standard_normal((n, 12)).astype(np.float32)
    q = rng.standard_normal((5, 12)).astype(np.float32)
    attributes = {"group": np.array(["a", "b", "c"])[rng.integers(0, 3, n)],
                  "length": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 1000, n).astype(float))}
    index = ExactIndex(block_size=100)
    index.build(x, attributes=attributes)
    return index, x, q, attributes


def expected(x, q, mask, k):
    scores = q.astype(np.float64) @ x.T.astype(np.float64)
    scores = np.where(mask if mask.ndim == 2 else mask[None], scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isneginf(top), -1, order), top


@pytest.mark.parametrize("form", ["dict", "mask", "callable", "per_query", "mask_2d"])
def test_filtered_search_matches_brute_force(corpus, form):
    index, x, q, attributes = corpus
    in_range = (attributes["length"] >= 200) & (attributes["length"] < 700)
    if form == "dict":
        flt, mask = {"group": {"in": ["a", "c"]}, "length": {"gte": 200, "lt": 700}}, \
            np.isin(attributes["group"], ["a", "c"]) & in_range
    elif form == "mask":
        flt = mask = in_range
    elif form == "callable":
        flt, mask = (lambda a: a["group"] == "b"), attributes["group"] == "b"
    elif form == "per_query":
        flt = [{"group": "a"}, None, {"group": "b"}, {"length": {"lt": 50}}, {"group": "c", "length": {"gt": 990}}]
        mask = np.stack([attributes["group"] == "a", np.ones(len(x), bool), attributes["group"] == "b",
                         attributes["length"] < 50, (attributes["group"] == "c") & (attributes["length"] > 990)])
    else:
        flt = mask = np.random.default_rng(8).random((len(q), len(x))) < 0.05
    result = index.search(q, 10, filter=flt)
    positions, scores = expected(x, q, mask, 10)
    np.testing.assert_array_equal(result.indices, positions)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-5)
    rows, cols = np.nonzero(result.indices >= 0)
    assert (mask if mask.ndim == 2 else mask[None].repeat(len(q), 0))[rows, result.indices[rows, cols]].all()


def test_filter_with_fewer_matches_than_k_pads(corpus):
    index, x, q, attributes = corpus
    rare = np.zeros(len(x), bool)
    rare[[5, 600, 899]] = True
    result = index.search(q, 10, filter=rare)
    assert (np.sort(result.indices[:, :3], axis=1) == [5, 600, 899]).all()
    assert (result.indices[:, 3:] == -1).all() and np.isneginf(result.scores[:, 3:]).all()


def test_filter_nobody_passes_gives_empty_result(corpus):
    index, _, q, _ = corpus
    for flt in ({"group": "zzz"}, np.zeros(900, bool), [{"group": "zzz"}] * len(q)):
        result = index.search(q, 4, filter=flt)
        assert (result.indices == -1).all() and np.isneginf(result.scores).all()


def test_filter_on_index_without_attributes_says_how_to_fix():
    index = ExactIndex()
    index.build(np.eye(3, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="known attributes: none"):
        index.search(np.eye(3, dtype=np.float32), 1, filter={"lang": "en"})
