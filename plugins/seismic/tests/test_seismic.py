"""Behaviour of the Seismic index: exactness without pruning, accuracy, determinism, persistence."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_seismic import SeismicIndex
from embedlab_seismic.state import LENGTH_BITS

import embedlab
from embedlab.persistence import load_state, read_manifest, save_state

#: Settings under which nothing is approximated: no pruning, full summaries, every query term
#: visited, and a heap factor so small that no block with a positive summary score is skipped.
EXHAUSTIVE = {"n_postings": 10**6, "summary_energy": 1.0, "query_cut": 10**4, "heap_factor": 1e-12}


def _assert_same_top(found: embedlab.SearchResult, truth: tuple[np.ndarray, np.ndarray]) -> None:
    indices, scores = truth
    hits = indices >= 0
    np.testing.assert_allclose(found.scores[hits], scores[hits], rtol=1e-5)
    # positions agree wherever the exact score is not tied with a neighbour's
    padded = np.pad(scores, ((0, 0), (1, 1)), constant_values=(np.inf, -np.inf))
    with np.errstate(invalid="ignore"):
        gaps = np.minimum(padded[:, :-2] - padded[:, 1:-1], padded[:, 1:-1] - padded[:, 2:])
    untied = hits & (gaps > 1e-4 * np.abs(scores))
    np.testing.assert_array_equal(found.indices[untied], indices[untied])


@pytest.mark.parametrize(("n_docs", "params"), [
    (3000, {}), (1000, {"centroid_fraction": 0.5, "min_cluster_size": 0, "pruning": "global"}),
    (500, {"centroid_fraction": 1.0, "first_sorted": False, "doc_cut": 1})])
def test_exhaustive_settings_agree_with_brute_force(synthetic, n_docs, params, exact_top) -> None:
    docs, queries = synthetic[0][:n_docs], synthetic[1]
    index = SeismicIndex(**EXHAUSTIVE, **params)
    index.build(docs)
    _assert_same_top(index.search(queries, 10), exact_top(docs, queries, 10))


def test_exhaustive_on_toy_splade_including_padding(toy, exact_top) -> None:
    docs, queries = toy
    index = SeismicIndex(**EXHAUSTIVE)
    index.build(docs)
    result = index.search(queries, 20)
    indices, scores = exact_top(docs, queries, 20)
    _assert_same_top(result, (indices, scores))
    # documents sharing no term with the query (the empty document among them) are padding
    np.testing.assert_array_equal(result.indices < 0, indices < 0)
    assert np.isneginf(result.scores[result.indices < 0]).all()


def test_default_settings_are_accurate_on_toy_splade(toy, exact_top, accuracy) -> None:
    docs, queries = toy
    assert docs.shape == (20, 1396) and queries.shape[0] == 5  # as counted in SOURCE.md
    assert (np.diff(docs.indptr) == 0).sum() == 1
    index = SeismicIndex()
    index.build(docs)
    assert accuracy(index.search(queries, 10).indices, exact_top(docs, queries, 10)[0]) >= 0.95


def test_approximation_trades_accuracy_for_work(synthetic, exact_top, accuracy) -> None:
    """Pruning, small query_cut and a high heap_factor lose accuracy; relaxing each recovers it."""
    docs, queries = synthetic
    truth = exact_top(docs, queries, 10)[0]
    index = SeismicIndex(n_postings=150)
    index.build(docs)
    acc = {(cut, hf): accuracy(index.search(queries, 10, query_cut=cut, heap_factor=hf).indices, truth)
           for cut in (2, 5, 10) for hf in (1.0, 0.8, 0.5)}
    assert acc[(10, 0.8)] >= 0.9
    assert acc[(2, 1.0)] < 0.85
    for hf in (1.0, 0.8, 0.5):
        assert acc[(2, hf)] <= acc[(5, hf)] <= acc[(10, hf)]
    for cut in (2, 5, 10):
        assert acc[(cut, 1.0)] <= acc[(cut, 0.8)] <= acc[(cut, 0.5)]


def test_fixed_pruning_keeps_the_largest_entries_of_each_list(synthetic) -> None:
    docs = synthetic[0]
    index = SeismicIndex(n_postings=40)
    index.build(docs)
    state, csc = index._state, docs.tocsc()
    starts = state.postings >> LENGTH_BITS
    positions = np.searchsorted(state.doc_ptr, starts, side="right") - 1
    for term in np.flatnonzero(np.diff(csc.indptr)):
        column = slice(csc.indptr[term], csc.indptr[term + 1])
        values, rows = csc.data[column], csc.indices[column]
        expected = rows[np.lexsort((rows, -values))[:40]]
        blocks = slice(state.list_blocks[term], state.list_blocks[term + 1] + 1)
        kept = positions[state.block_ptr[blocks][0]:state.block_ptr[blocks][-1]]
        assert sorted(kept) == sorted(expected)


def test_summaries_bound_block_maxima_up_to_quantisation(synthetic) -> None:
    docs = synthetic[0][:600]
    index = SeismicIndex(n_postings=100, summary_energy=0.5)
    index.build(docs)
    s = index._state
    positions = np.searchsorted(s.doc_ptr, s.postings >> LENGTH_BITS, side="right") - 1
    dense = docs.toarray()
    for term in range(0, s.dim, 7):
        terms = s.summary_terms[s.list_summary_ptr[term]:s.list_summary_ptr[term + 1]]
        if terms.size == 0:
            continue
        e0, e1 = s.list_entry_ptr[term], s.list_entry_ptr[term + 1]
        ends = np.append(s.summary_ptr[s.list_summary_ptr[term] + 1:s.list_summary_ptr[term + 1]], e1 - e0)
        for i, component in enumerate(terms):
            for x in range(e0 + s.summary_ptr[s.list_summary_ptr[term] + i], e0 + ends[i]):
                block = s.list_blocks[term] + s.summary_blocks[x]
                members = positions[s.block_ptr[block]:s.block_ptr[block + 1]]
                value = s.summary_codes[x] * s.block_step[block] + s.block_min[block]
                true_max = dense[members, component].max()
                assert abs(value - true_max) <= s.block_step[block] / 2 + 1e-5 * (1 + true_max)


def test_build_is_deterministic_and_thread_independent(synthetic) -> None:
    docs, queries = synthetic
    indexes = []
    for params in ({}, {}, {"n_threads": 2}):
        index = SeismicIndex(n_postings=200, **params)
        index.build(docs)
        indexes.append(index)
    for name, array in indexes[0]._state.arrays().items():
        for other in indexes[1:]:
            np.testing.assert_array_equal(other._state.arrays()[name], array, err_msg=name)
    first = indexes[0].search(queries, 10)
    threaded = indexes[0].search(queries, 10, n_threads=3)
    np.testing.assert_array_equal(threaded.indices, first.indices)
    np.testing.assert_array_equal(threaded.scores, first.scores)
    reseeded = SeismicIndex(n_postings=200, seed=1)
    reseeded.build(docs)
    assert not np.array_equal(reseeded._state.block_ptr, indexes[0]._state.block_ptr)


def test_save_load_returns_identical_results(synthetic, tmp_path) -> None:
    docs, queries = synthetic
    index = SeismicIndex(n_postings=200, query_cut=5)
    attributes = {"group": np.arange(docs.shape[0]) % 3, "name": np.array([f"d{i}" for i in range(docs.shape[0])])}
    index.build(docs, attributes)
    index.save(tmp_path / "state")
    manifest = read_manifest(tmp_path / "state")
    assert (manifest["kind"], manifest["name"]) == ("index", "seismic")
    assert all(name.endswith(".npy") for name in manifest["files"])
    for loaded in (SeismicIndex.load(tmp_path / "state"), SeismicIndex.load(tmp_path / "state", mmap=True)):
        assert loaded.config == index.config and loaded.fingerprint == index.fingerprint
        assert len(loaded) == len(index) and loaded.memory_bytes == index.memory_bytes
        for flt in (None, {"group": 1}):
            a, b = index.search(queries, 10, filter=flt), loaded.search(queries, 10, filter=flt)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.scores, b.scores)


def test_corrupted_state_is_detected(synthetic, tmp_path) -> None:
    docs = synthetic[0][:300]
    index = SeismicIndex(n_postings=50)
    index.build(docs)
    index.save(tmp_path / "state")
    file = tmp_path / "state" / "postings.npy"
    payload = bytearray(file.read_bytes())
    payload[-3] ^= 0xFF
    file.write_bytes(bytes(payload))
    with pytest.raises(embedlab.StateError, match="checksum"):
        SeismicIndex.load(tmp_path / "state")
    # a consistent checksum does not hide a structurally impossible array
    arrays = dict(index._state.arrays())
    arrays["summary_blocks"] = arrays["summary_blocks"] + np.uint16(5000)
    save_state(tmp_path / "edited", index, arrays=arrays, meta={"dim": index.dim, "attributes": []})
    with pytest.raises(embedlab.StateError, match="summary_blocks"):
        SeismicIndex.load(tmp_path / "edited")
    assert load_state(tmp_path / "edited").arrays["summary_blocks"].dtype == np.uint16
    with pytest.raises(embedlab.StateError, match="expected name"):
        embedlab.index.ExactIndex.load(tmp_path / "edited")


def test_filters_restrict_results(synthetic, exact_top) -> None:
    docs, queries = synthetic
    index = SeismicIndex(**EXHAUSTIVE)
    groups = np.arange(docs.shape[0]) % 4
    index.build(docs, {"group": groups})
    result = index.search(queries, 10, filter={"group": 2})
    assert set(groups[result.indices[result.indices >= 0]]) == {2}
    kept = np.flatnonzero(groups == 2)
    indices, scores = exact_top(docs[kept], queries, 10)
    _assert_same_top(result, (np.where(indices >= 0, kept[np.maximum(indices, 0)], -1), scores))
    per_query = np.zeros((queries.shape[0], docs.shape[0]), dtype=bool)
    per_query[:, :5] = True
    assert set(index.search(queries, 10, filter=per_query).indices.ravel()) <= {-1, 0, 1, 2, 3, 4}


def test_add_equals_building_everything(synthetic) -> None:
    docs, queries = synthetic
    whole = SeismicIndex(n_postings=200)
    whole.build(docs, {"g": np.arange(docs.shape[0])})
    grown = SeismicIndex(n_postings=200)
    grown.build(docs[:1000], {"g": np.arange(1000)})
    grown.add(docs[1000:], {"g": np.arange(1000, docs.shape[0])})
    assert len(grown) == len(whole)
    np.testing.assert_array_equal(grown.search(queries, 10).indices, whole.search(queries, 10).indices)
    with pytest.raises(embedlab.InvalidInputError, match="attributes"):
        grown.add(docs[:5])


def test_memory_bytes_counts_every_array(synthetic) -> None:
    index = SeismicIndex(n_postings=200)
    assert index.memory_bytes == 0
    index.build(synthetic[0])
    assert index.memory_bytes == sum(a.nbytes for a in index._state.arrays().values())
    assert index.memory_bytes > synthetic[0].data.nbytes + synthetic[0].indices.nbytes


def test_registered_under_index_seismic() -> None:
    assert isinstance(embedlab.create("index", "seismic", query_cut=3), SeismicIndex)


# -- bad input -------------------------------------------------------------------------------

def _csr(rows: list[dict[int, float]], dim: int) -> sp.csr_matrix:
    data = [(r, c, v) for r, row in enumerate(rows) for c, v in row.items()]
    r, c, v = zip(*data) if data else ((), (), ())
    return sp.csr_matrix((np.asarray(v, np.float32), (np.asarray(r, int), np.asarray(c, int))),
                         shape=(len(rows), dim))


def test_duplicate_term_ids_are_summed(synthetic) -> None:
    docs, queries = synthetic
    part = docs[:200]
    split = sp.csr_matrix((np.repeat(part.data / 2, 2), np.repeat(part.indices, 2), part.indptr * 2),
                          shape=part.shape)
    assert split.nnz == 2 * part.nnz  # every term id twice in its row, each with half the value
    a, b = SeismicIndex(n_postings=50), SeismicIndex(n_postings=50)
    a.build(docs[:200])
    b.build(split)
    np.testing.assert_array_equal(a.search(queries, 5).indices, b.search(queries, 5).indices)
    np.testing.assert_allclose(a.search(queries, 5).scores, b.search(queries, 5).scores, rtol=1e-6)


def test_out_of_range_term_ids_are_rejected() -> None:
    bad = sp.csr_matrix((np.ones(2, np.float32), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 5))
    index = SeismicIndex()
    with pytest.raises(embedlab.InvalidInputError, match="row 1 has term id 7 outside"):
        index.build(bad)
    index.build(_csr([{0: 1.0}, {4: 2.0}], 5))
    with pytest.raises(embedlab.InvalidInputError, match="term id -1 outside"):
        index.search(sp.csr_matrix((np.ones(1, np.float32), np.array([-1]), np.array([0, 1])), shape=(1, 5)), 1)


def test_empty_rows_and_empty_queries() -> None:
    docs = _csr([{}, {1: 1.0, 2: 0.5}, {}, {2: 2.0}], 4)
    index = SeismicIndex()
    index.build(docs)
    assert len(index) == 4
    result = index.search(_csr([{2: 1.0}, {}, {0: 1.0}, {1: 1.0, 2: 0.0}], 4), 3)
    np.testing.assert_array_equal(result.indices, [[3, 1, -1], [-1, -1, -1], [-1, -1, -1], [1, -1, -1]])
    assert np.isneginf(result.scores[1]).all()
    assert index.search(sp.csr_matrix((0, 4), dtype=np.float32), 5).indices.shape == (0, 5)
    nothing = SeismicIndex()
    nothing.build(_csr([{}, {}], 3))
    assert (nothing.search(_csr([{0: 1.0}], 3), 2).indices == -1).all()


def test_other_bad_inputs_say_what_is_wrong(synthetic) -> None:
    docs, queries = synthetic
    index = SeismicIndex(n_postings=50)
    with pytest.raises(embedlab.NotFittedError, match="build"):
        index.search(queries, 10)
    with pytest.raises(embedlab.InvalidInputError, match="sparse"):
        index.build(docs.toarray())
    with pytest.raises(embedlab.InvalidInputError, match="no vectors"):
        index.build(sp.csr_matrix((0, 10), dtype=np.float32))
    nan = docs[:10].copy()
    nan.data[3] = np.nan
    with pytest.raises(embedlab.InvalidInputError, match="NaN"):
        index.build(nan)
    index.build(docs[:300])
    with pytest.raises(embedlab.InvalidInputError, match="vocabulary size 10 does not match"):
        index.search(sp.csr_matrix((2, 10), dtype=np.float32), 5)
    for k in (0, -1, 2.5, True):
        with pytest.raises(embedlab.InvalidInputError, match="k must be"):
            index.search(queries, k)
    with pytest.raises(embedlab.InvalidInputError, match="attribute"):
        SeismicIndex().build(docs[:3], {"g": np.arange(4)})
    with pytest.raises(embedlab.InvalidInputError, match="filter"):
        index.search(queries, 3, filter=np.ones(7, dtype=bool))


@pytest.mark.parametrize(("params", "field"), [
    ({"heap_factor": 0}, "heap_factor"), ({"heap_factor": -0.5}, "heap_factor"),
    ({"heap_factor": float("nan")}, "heap_factor"), ({"query_cut": 0}, "query_cut"),
    ({"query_cut": 2.5}, "query_cut"), ({"n_postings": 0}, "n_postings"),
    ({"summary_energy": 0.0}, "summary_energy"), ({"summary_energy": 1.5}, "summary_energy"),
    ({"centroid_fraction": 0}, "centroid_fraction"), ({"centroid_fraction": 2}, "centroid_fraction"),
    ({"min_cluster_size": -1}, "min_cluster_size"), ({"doc_cut": 0}, "doc_cut"),
    ({"pruning": "random"}, "pruning"), ({"max_fraction": 0}, "max_fraction"),
    ({"seed": -3}, "seed"), ({"n_threads": 0}, "n_threads"), ({"first_sorted": 1}, "first_sorted"),
    ({"lambda_": 3}, "unknown"),
])
def test_invalid_parameters_raise_config_error(params, field) -> None:
    with pytest.raises(embedlab.ConfigError, match=field):
        SeismicIndex(**params)


def test_search_overrides_are_validated(toy) -> None:
    index = SeismicIndex()
    index.build(toy[0])
    with pytest.raises(embedlab.ConfigError, match="heap_factor"):
        index.search(toy[1], 5, heap_factor=0.0)
    with pytest.raises(embedlab.ConfigError, match="cannot override n_postings"):
        index.search(toy[1], 5, n_postings=10)
