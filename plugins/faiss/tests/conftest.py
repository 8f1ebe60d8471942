"""Test vectors: texmex files from ../shared/data beside the repository root, and seeded
clustered unit vectors shaped like sentence embeddings (384-d, as all-MiniLM-L6-v2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedlab.testing import clustered_unit_vectors
from embedlab.threads import faiss_threads

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


def read_vecs(path: Path, dtype: str) -> np.ndarray:
    """Read a texmex ``.fvecs``/``.ivecs``/``.bvecs`` file (int32 dimension before every vector)."""
    raw = np.fromfile(path, dtype=np.uint8)
    dim = int(raw[:4].view(np.int32)[0])
    width = np.dtype(dtype).itemsize
    rows = raw.reshape(-1, 4 + dim * width)[:, 4:]
    return np.ascontiguousarray(rows).view(dtype).reshape(-1, dim)


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """One OpenMP thread per test (restored after it): on a busy 2-core CI machine FAISS's
    spinning worker threads cost several times more wall time than they save."""
    with faiss_threads(1):
        yield


@pytest.fixture(scope="session")
def bigann():
    """10,000 x 128 SIFT vectors, 100 queries and their exact L2 top-100."""
    root = DATA / "ann-bigann10k"
    return (read_vecs(root / "bigann10k_base.bvecs", "uint8").astype(np.float32),
            read_vecs(root / "bigann10k_query.bvecs", "uint8").astype(np.float32),
            read_vecs(root / "bigann10k_groundtruth.ivecs", "int32"))


@pytest.fixture(scope="session")
def fmnist():
    """1,000 x 784 Fashion-MNIST vectors, 500 queries and their exact L2 top-100."""
    root = DATA / "ann-fmnist1k"
    return (read_vecs(root / "fmnist1k_base.fvecs", "float32"),
            read_vecs(root / "fmnist1k_query.fvecs", "float32"),
            read_vecs(root / "fmnist1k_groundtruth.ivecs", "int32"))


@pytest.fixture(scope="session")
def minilm_like():
    """5,000 documents and 200 queries (384-d unit vectors) drawn from the same 50 clusters."""
    x = clustered_unit_vectors(5200, dim=384, clusters=50, seed=1)
    return x[:5000], x[5000:]


@pytest.fixture(scope="session")
def clustered64():
    """3,000 documents and 100 queries (64-d unit vectors): small enough to train PQ quickly."""
    x = clustered_unit_vectors(3100, dim=64, clusters=30, seed=5)
    return x[:3000], x[3000:]
