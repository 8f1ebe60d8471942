"""``embedlab.load_component(path, mmap=...)``: any saved component back by its manifest."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.index import ExactIndex
from embedlab.pq_compressor import PQCompressor


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(300, 16)).astype(np.float32)


def test_mmap_true_memory_maps_the_arrays_and_searches_the_same(vectors, tmp_path) -> None:
    index = ExactIndex(metric="cosine")
    index.build(vectors)
    index.save(tmp_path / "index")
    mapped = embedlab.load_component(tmp_path / "index", mmap=True)
    read = embedlab.load_component(tmp_path / "index")
    assert any(isinstance(a, np.memmap) for a in mapped._store.arrays().values())
    assert not any(isinstance(a, np.memmap) for a in read._store.arrays().values())
    for loaded in (mapped, read):
        a, b = index.search(vectors[:5], 10), loaded.search(vectors[:5], 10)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_mmap_true_on_a_component_that_cannot_map_says_so(vectors, tmp_path) -> None:
    PQCompressor(m=4, ksub=16).fit(vectors).save(tmp_path / "pq")
    with pytest.raises(embedlab.ConfigError, match="compressor 'pq' \\(embedlab\\) cannot memory-map its "
                                                   "state.*load_component\\(path\\)"):
        embedlab.load_component(tmp_path / "pq", mmap=True)
    assert embedlab.load_component(tmp_path / "pq").bytes_per_vector == 4
