"""Document ids: unique, prefix-free, and (semantic ids) shared prefixes between close documents."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from embedlab_dsi import DocidTrie, atomic_ids, make_docids, naive_ids, semantic_ids, shared_prefix
from embedlab_dsi.docids import Docids

from embedlab.errors import InvalidInputError
from embedlab.testing import clustered_unit_vectors


def assert_prefix_free(codes) -> None:
    assert len(set(codes)) == len(codes)
    prefixes = {code[:t] for code in codes for t in range(len(code))}
    assert not prefixes.intersection(codes)


def test_semantic_ids_are_unique_prefix_free_with_small_leaves_and_close_neighbours():
    x = clustered_unit_vectors(600, 24, clusters=12, seed=0, noise=0.4)
    ids = semantic_ids(x, k=5, c=20, seed=0)
    assert_prefix_free(ids.codes)
    assert ids.vocab == 20 and len(ids) == 600
    leaves: dict[tuple[int, ...], list[int]] = {}
    for p, code in enumerate(ids.codes):
        leaves.setdefault(code[:-1], []).append(p)
        assert all(t < 5 for t in code[:-1])  # cluster digits come from k = 5
    assert max(len(m) for m in leaves.values()) <= 20
    # the last token is the rank inside the leaf: 0..size-1
    for members in leaves.values():
        assert sorted(ids.codes[p][-1] for p in members) == list(range(len(members)))
    # 600 docs, leaves <= 20 at k = 5: at least two cluster levels
    assert ids.max_length >= 3
    sims = x @ x.T
    same_leaf = np.mean([sims[a, b] for m in leaves.values() for a, b in itertools.combinations(m, 2)])
    off = ~np.eye(600, dtype=bool)
    assert same_leaf > sims[off].mean() + 0.3
    # longer shared prefixes, closer documents (monotone on average)
    by_depth: dict[int, list[float]] = {}
    rng = np.random.default_rng(0)
    for a, b in rng.integers(0, 600, (4000, 2)).tolist():
        if a != b:
            by_depth.setdefault(shared_prefix(ids.codes[a], ids.codes[b]), []).append(sims[a, b])
    means = [np.mean(by_depth[d]) for d in sorted(by_depth)]
    assert means == sorted(means)


def test_semantic_ids_are_deterministic_and_separate_identical_vectors():
    x = clustered_unit_vectors(120, 8, clusters=4, seed=1)
    assert semantic_ids(x, k=3, c=10, seed=7).codes == semantic_ids(x, k=3, c=10, seed=7).codes
    same = np.ones((50, 4), dtype=np.float32)  # k-means cannot split these: equal runs instead
    ids = semantic_ids(same, k=4, c=5)
    assert_prefix_free(ids.codes)


def test_naive_and_atomic_ids():
    naive = naive_ids(1000)
    assert naive.codes[0] == (0, 0, 0) and naive.codes[999] == (9, 9, 9) and naive.vocab == 10
    assert naive_ids(1001).codes[1000] == (1, 0, 0, 0)
    assert naive.strings()[42] == "0-4-2"
    assert_prefix_free(naive_ids(137, base=4).codes)
    assert int("".join(map(str, naive_ids(137, base=4).codes[100])), 4) == 100
    atomic = atomic_ids(5)
    assert atomic.codes == ((0,), (1,), (2,), (3,), (4,)) and atomic.vocab == 5
    assert naive_ids(1).codes == ((0,),)


def test_round_trip_through_arrays_and_clear_errors():
    ids = semantic_ids(clustered_unit_vectors(80, 8, clusters=3, seed=2), k=3, c=7)
    again = Docids.from_arrays(ids.as_arrays()["codes"], ids.vocab, ids.scheme)
    assert again.codes == ids.codes
    with pytest.raises(InvalidInputError, match="share an id"):
        Docids(((1,), (1,)), 2, "naive")
    with pytest.raises(InvalidInputError, match="outside"):
        Docids(((0,), (3,)), 2, "naive")
    with pytest.raises(InvalidInputError, match="empty"):
        naive_ids(0)
    with pytest.raises(InvalidInputError, match="need document vectors"):
        make_docids("semantic", 3)
    with pytest.raises(InvalidInputError, match="unknown docid scheme"):
        make_docids("random", 3)
    with pytest.raises(InvalidInputError, match="NaN|finite"):
        semantic_ids(np.full((4, 2), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="not prefix-free"):
        DocidTrie(Docids(((0,), (0, 1)), 2, "naive"))
