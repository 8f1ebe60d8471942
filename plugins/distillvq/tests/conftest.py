"""Small seeded clustered unit vectors (the geometry of sentence embeddings) and one thread."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
import torch
from embedlab_distillvq import DistillVQIndex


def clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.8 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(autouse=True)
def one_thread():
    """One FAISS and torch thread per test, restored afterwards."""
    previous = faiss.omp_get_max_threads(), torch.get_num_threads()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    yield
    faiss.omp_set_num_threads(previous[0])
    torch.set_num_threads(previous[1])


@pytest.fixture(scope="session")
def data():
    """1,500 documents and 60 queries, 32-d, from 20 clusters."""
    x = clustered(1560, 32, 20, seed=3)
    return x[:1500], x[1500:]


@pytest.fixture(scope="session")
def small():
    """Factory of a quick configuration: 16 lists, 8 subspaces of 16 centroids (8 bytes per vector)."""

    def make(**overrides) -> DistillVQIndex:
        params = dict(nlist=16, nprobe=2, m=8, ksub=16, epochs=2, batch_size=32, topk=20,
                      max_train_queries=300, threads=1, show_progress=False)
        params.update(overrides)
        return DistillVQIndex(**params)

    return make
