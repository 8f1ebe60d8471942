"""FaissIndex.build_from_chunks: the same index as a build from memory, one chunk at a time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from embedlab_faiss import FaissIndex

from embedlab.shards import ChunkStore, write_chunk
from embedlab.testing import clustered_unit_vectors


def chunk_store(root: Path, vectors: np.ndarray, size: int) -> ChunkStore:
    store = ChunkStore.open(root, "test", vectors.shape[0], size)
    for chunk in range(store.n_chunks):
        start, stop = store.bounds(chunk)
        write_chunk(store, chunk, vectors[start:stop], 0.0)
    return store


@pytest.mark.parametrize("params", [
    {"factory": "IVF16,PQ8x4", "train_size": 1500, "nprobe": 4},
    {"factory": "IVF16,Flat", "metric": "cosine", "nprobe": 3},
    {"factory": "HNSW16"},
])
def test_build_from_chunks_equals_build(tmp_path: Path, params: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("embedlab_faiss.index.ADD_BATCH", 700)  # batches straddle the 300-row chunks
    vectors = clustered_unit_vectors(2000, 32, clusters=20, seed=1)
    store = chunk_store(tmp_path / "chunks", vectors, 300)
    attributes = {"year": np.arange(2000) % 4}
    streamed, direct = FaissIndex(num_threads=1, **params), FaissIndex(num_threads=1, **params)
    streamed.build_from_chunks(store, attributes)
    direct.build(vectors, attributes)
    assert streamed.trained_on == direct.trained_on
    queries = clustered_unit_vectors(20, 32, clusters=20, seed=2)
    for kwargs in ({}, {"filter": {"year": 1}}):
        a, b = streamed.search(queries, 10, **kwargs), direct.search(queries, 10, **kwargs)
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert streamed.memory_bytes == direct.memory_bytes
