"""Behaviour shared by the three strategies: exactness where promised, empty and partial
results, per-query filters, missing attributes, the registry."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_filtered import AcornIndex, PostfilterIndex, PrefilterIndex

import embedlab
from embedlab.filters import resolve_filter

SPECS = [
    {"group": 3},                                   # equality, ~2.5 %
    {"group": {"in": [1, 5, 9, 11]}},               # membership, ~10 %
    {"size": {"gte": 20.0, "lt": 70.0}},            # range, ~50 %, NaN never passes
    {"label": {"in": ["a", "c"]}, "size": {"lt": 50}},  # AND over two columns, None never passes
]


#: Every strategy; ACORN twice: the graph alone (the default), and with an exact fallback.
STRATEGIES = [(PrefilterIndex, {}), (PostfilterIndex, {}), (AcornIndex, {}), (AcornIndex, {"exact_below": 1000})]


def built(cls, data, **params):
    index = cls(**params)
    index.build(data["docs"], data["attributes"])
    return index


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_prefilter_equals_brute_force(data, metric, brute_force):
    index = built(PrefilterIndex, data, metric=metric, block_size=500)
    for spec in SPECS:
        mask = resolve_filter(spec, data["attributes"], len(index), 1)
        ids, scores = brute_force(data["docs"], data["queries"], 10, mask, metric)
        result = index.search(data["queries"], 10, filter=spec)
        np.testing.assert_array_equal(result.indices, ids)
        np.testing.assert_allclose(result.scores, scores, rtol=1e-4, atol=1e-3)


def test_postfilter_expands_until_exact(data):
    index = built(PostfilterIndex, data, oversample=0.05, growth=2.0)
    reference = built(PrefilterIndex, data)
    first = int(np.ceil(0.05 * 10 / 0.025))  # k' for a 2.5 %-selective filter before expanding
    for spec in SPECS:
        expected = reference.search(data["queries"], 10, filter=spec)
        result = index.search(data["queries"], 10, filter=spec)
        np.testing.assert_array_equal(result.indices, expected.indices)
        np.testing.assert_allclose(result.scores, expected.scores, rtol=1e-5, atol=1e-5)
    index.search(data["queries"], 10, filter={"group": 3})
    assert index.last_depths.min() > max(first, 10)  # every query had to search deeper


def test_postfilter_max_k_stops_early(data):
    index = built(PostfilterIndex, data, max_k=20)
    result = index.search(data["queries"], 10, filter={"group": 3})
    assert (index.last_depths == 20).all()
    mask = resolve_filter({"group": 3}, data["attributes"], len(index), 1)
    found = result.indices[result.indices >= 0]
    assert mask[found].all() and (result.indices == -1).any()  # fewer than k passed in the top 20


@pytest.mark.parametrize("spec, selectivity", [({"size": {"lt": 50}}, 0.5), ({"group": {"in": [0, 1]}}, 0.05)])
def test_acorn_recall(data, spec, selectivity, brute_force, recall):
    index = built(AcornIndex, data, M=16, gamma=12, M_beta=32, ef_search=64, exact_below=0)
    mask = resolve_filter(spec, data["attributes"], len(index), 1)
    assert abs(mask.mean() - selectivity) < 0.5 * selectivity
    truth, _ = brute_force(data["docs"], data["queries"], 10, mask)
    result = index.search(data["queries"], 10, filter=spec)
    assert recall(result.indices, truth) > 0.9
    assert mask[result.indices[result.indices >= 0]].all()  # never a failing document


def test_acorn_one_and_metrics(data, brute_force, recall):
    for params in ({"gamma": 1, "M_beta": 64}, {"metric": "l2"}, {"metric": "cosine"}):
        index = built(AcornIndex, data, exact_below=0, **params)
        metric = params.get("metric", "ip")
        mask = resolve_filter(SPECS[2], data["attributes"], len(index), 1)
        truth, scores = brute_force(data["docs"], data["queries"], 10, mask, metric)
        result = index.search(data["queries"], 10, filter=SPECS[2])
        assert recall(result.indices, truth) > 0.9, params
        hit = result.indices == truth
        np.testing.assert_allclose(result.scores[hit], scores[hit], rtol=1e-4, atol=1e-3)


def test_acorn_exact_below_is_exact_for_selective_filters(data, brute_force):
    index = built(AcornIndex, data, exact_below=100)
    mask = resolve_filter({"group": 3}, data["attributes"], len(index), 1)
    assert mask.sum() <= 100
    truth, scores = brute_force(data["docs"], data["queries"], 10, mask)
    result = index.search(data["queries"], 10, filter={"group": 3})
    np.testing.assert_array_equal(result.indices, truth)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls, params", STRATEGIES)
def test_empty_and_partial_results(data, cls, params):
    index = built(cls, data, **params)
    nothing = index.search(data["queries"], 5, filter={"group": 99})
    assert (nothing.indices == -1).all() and np.isneginf(nothing.scores).all()
    three = np.zeros(len(index), bool)
    three[[4, 400, 2000]] = True
    partial = index.search(data["queries"][:2], 5, filter=three)
    assert sorted(partial.indices[0, :3]) == [4, 400, 2000]
    assert (partial.indices[:, 3:] == -1).all() and np.isneginf(partial.scores[:, 3:]).all()
    assert (np.diff(partial.scores[:, :3], axis=1) <= 0).all()


@pytest.mark.parametrize("cls, params", STRATEGIES)
def test_per_query_filters(data, cls, params):
    index = built(cls, data, **params)
    queries = data["queries"][:6]
    specs = [SPECS[0], SPECS[2], None, {"group": 99}, SPECS[1], SPECS[2]]
    together = index.search(queries, 10, filter=specs)
    for row, spec in enumerate(specs):
        alone = index.search(queries[row:row + 1], 10, filter=spec)
        np.testing.assert_array_equal(together.indices[row], alone.indices[0])
    masks = resolve_filter(specs, data["attributes"], len(index), len(specs))
    found = together.indices
    assert all(masks[row, found[row][found[row] >= 0]].all() for row in range(len(specs)))
    assert (found[3] == -1).all()


def test_missing_attributes_never_pass(data):
    index = built(PrefilterIndex, data)
    size, label = data["attributes"]["size"], data["attributes"]["label"]
    found = index.search(data["queries"], 50, filter={"size": {"gte": 0}}).indices
    assert not np.isnan(size[found]).any()
    found = index.search(data["queries"], 50, filter={"label": {"in": ["a", "b", "c", "d"]}}).indices
    assert all(value is not None for value in label[found.ravel()])


@pytest.mark.parametrize("cls", [PrefilterIndex, PostfilterIndex, AcornIndex])
def test_add_appends_documents_and_attributes(data, cls, recall):
    whole = built(PrefilterIndex, data)
    index = cls()
    half = {name: column[:1500] for name, column in data["attributes"].items()}
    rest = {name: column[1500:] for name, column in data["attributes"].items()}
    index.build(data["docs"][:1500], half)
    index.add(data["docs"][1500:], rest)
    assert len(index) == 3000 and index.attributes["group"].shape == (3000,)
    expected = whole.search(data["queries"], 10, filter=SPECS[2]).indices
    assert recall(index.search(data["queries"], 10, filter=SPECS[2]).indices, expected) > 0.9
    with pytest.raises(embedlab.InvalidInputError, match="attributes"):
        index.add(data["docs"][:2], {"group": np.zeros(2, int)})


def test_registered_and_in_a_pipeline_config():
    names = embedlab.registry().names("index")
    assert {"prefilter", "postfilter", "acorn"} <= set(names)
    index = embedlab.create("index", "postfilter", index="prefilter", index_params={"metric": "l2"})
    assert isinstance(index.inner, PrefilterIndex) and index.inner.config.metric == "l2"


@pytest.mark.parametrize("n", [10, 999, 1000, 1001])
def test_acorn_unfiltered_search_around_exact_below(n, brute_force):
    """Unfiltered queries on corpora of at most exact_below documents take the exact path; it
    used to scan no document at all (an empty result for every unfiltered search)."""
    rng = np.random.default_rng(n)
    docs = rng.standard_normal((n, 8)).astype(np.float32)
    queries = rng.standard_normal((5, 8)).astype(np.float32)
    index = AcornIndex(exact_below=1000)
    index.build(docs)
    truth, scores = brute_force(docs, queries, 10, None)
    result = index.search(queries, 10)
    if n <= index.config.exact_below:
        np.testing.assert_array_equal(result.indices, truth)
        np.testing.assert_allclose(result.scores, scores, rtol=1e-4, atol=1e-4)
    else:
        assert (result.indices >= 0).all() and np.mean(result.indices == truth) > 0.9
