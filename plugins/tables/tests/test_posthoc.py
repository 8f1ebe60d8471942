"""The post-hoc table compressors on fixed vectors (the benchmark's retrieval side)."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_tables.posthoc import TableDedup, TableInt, TablePrune, TableTT, tt_rows, tt_svd

import embedlab
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.index import ExactIndex


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(300, 24)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_int_codes_bound_the_error_and_row_scales_beat_one_global_scale(vectors, tmp_path):
    x = vectors * np.geomspace(0.01, 1.0, len(vectors))[:, None].astype(np.float32)  # rows of unlike magnitude
    q8 = TableInt(bits=8).fit(x)
    codes = q8.encode(x)
    assert codes.shape == (300, 24) and codes.dtype == np.uint8 and q8.bytes_per_vector == 24
    assert np.abs(q8.decode(codes) - x).max() <= q8.global_scale / 2 + 1e-7
    row = TableInt(bits=8, scale="row").fit(x)
    assert row.bytes_per_vector == 28
    row_error = ((row.decode(row.encode(x)) - x) ** 2).sum()
    assert row_error < ((q8.decode(codes) - x) ** 2).sum() / 10
    q16 = TableInt(bits=16).fit(x)
    assert np.abs(q16.decode(q16.encode(x)) - x).max() < 2e-5 and q16.bytes_per_vector == 48
    row.save(tmp_path / "row")
    loaded = embedlab.load_component(tmp_path / "row")
    np.testing.assert_array_equal(loaded.decode(row.encode(x)), row.decode(row.encode(x)))
    with pytest.raises(InvalidInputError, match="expected an"):
        row.decode(codes)
    with pytest.raises(NotFittedError):
        TableInt().encode(x)


def test_prune_keeps_the_largest_magnitudes_of_each_row(vectors, tmp_path):
    pruner = TablePrune(keep=0.25).fit(vectors)
    decoded = pruner.decode(pruner.encode(vectors))
    assert pruner.kept == 6 and pruner.bytes_per_vector == 36
    reference = np.zeros_like(vectors)
    top = np.argsort(-np.abs(vectors), axis=1)[:, :6]
    np.put_along_axis(reference, top, np.take_along_axis(vectors, top, axis=1), axis=1)
    np.testing.assert_array_equal(decoded, reference)
    pruner.save(tmp_path / "p")
    np.testing.assert_array_equal(embedlab.load_component(tmp_path / "p").decode(pruner.encode(vectors)), decoded)
    with pytest.raises(InvalidInputError, match="dimension"):
        pruner.encode(vectors[:, :5])


def test_tt_svd_recovers_a_tensor_train_and_full_rank_is_exact(vectors, tmp_path):
    rng = np.random.default_rng(1)
    rows, dims = [4, 5, 6], [2, 3, 4]
    cores = [rng.normal(size=(1, 4, 2, 3)), rng.normal(size=(3, 5, 3, 2)), rng.normal(size=(2, 6, 4, 1))]
    matrix = tt_rows([c.astype(np.float32) for c in cores], np.arange(120))
    fitted = tt_svd(matrix, rows, dims, rank=3)
    assert [c.shape for c in fitted] == [(1, 4, 2, 3), (3, 5, 3, 2), (2, 6, 4, 1)]  # rank 2 suffices in the middle
    np.testing.assert_allclose(tt_rows(fitted, np.arange(120)), matrix, atol=1e-4)
    exact = TableTT(rank=10_000).fit(vectors)
    np.testing.assert_allclose(exact.decode(exact.encode(vectors)), vectors, atol=1e-5)
    errors = [((TableTT(rank=r).fit(vectors).decode(np.arange(300, dtype=np.uint32)[:, None]) - vectors) ** 2).sum()
              for r in (2, 8, 32)]
    assert errors[0] > errors[1] > errors[2]
    small = TableTT(rank=4, order="pca").fit(vectors)
    assert small.bytes_per_vector == 4 and 0 < small.memory_bytes < vectors.nbytes
    shuffled = vectors[::-1]
    np.testing.assert_allclose(small.decode(small.encode(shuffled)),
                               small.decode(small.encode(vectors))[::-1])  # codes follow the rows, any order
    with pytest.raises(InvalidInputError, match="not one of the fitted rows"):
        small.encode(vectors[:2] + 0.5)
    small.save(tmp_path / "tt")
    loaded = embedlab.load_component(tmp_path / "tt")
    np.testing.assert_array_equal(loaded.decode(loaded.encode(vectors[:7])), small.decode(small.encode(vectors[:7])))


def test_dedup_merges_duplicates_first_and_encodes_new_vectors_to_the_nearest(vectors, tmp_path):
    unique = vectors[:50]
    table = np.repeat(unique, 4, axis=0) + np.float32(1e-4)
    dedup = TableDedup(ratio=4.0).fit(table)
    assert len(dedup.representatives) == 50 and dedup.stats["fallback_merged"] == 0
    np.testing.assert_allclose(dedup.decode(dedup.encode(table)), table, atol=1e-6)
    assert dedup.bytes_per_vector == 2 and dedup.memory_bytes == 50 * 24 * 4
    near = unique[7] + 0.01
    np.testing.assert_allclose(dedup.decode(dedup.encode(near[None]))[0], unique[7] + 1e-4, atol=1e-6)
    dedup.save(tmp_path / "d")
    np.testing.assert_array_equal(embedlab.load_component(tmp_path / "d").encode(table), dedup.encode(table))


def test_registered_compressors_search_through_the_exact_index(vectors):
    queries = vectors[:5] + 0.05
    for name, params in (("table-int", {"bits": 16}), ("table-prune", {"keep": 1.0})):
        compressor = embedlab.create("compressor", name, **params).fit(vectors)
        index = ExactIndex(metric="ip")
        index.use_compressor(compressor)
        index.build(vectors)
        expected = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :5]
        np.testing.assert_array_equal(index.search(queries, 5).indices, expected)
