"""Small seeded clustered unit vectors (the geometry of sentence embeddings) and one thread."""

from __future__ import annotations

import pytest
from embedlab_distillvq import DistillVQIndex

from embedlab.testing import clustered_unit_vectors
from embedlab.threads import faiss_threads, torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    """One FAISS and torch thread per test, restored afterwards."""
    with faiss_threads(1), torch_threads(1):
        yield


@pytest.fixture(scope="session")
def data():
    """1,500 documents and 60 queries, 32-d, from 20 clusters."""
    x = clustered_unit_vectors(1560, 32, 20, seed=3, noise=0.8)
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
