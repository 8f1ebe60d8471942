"""Small clustered embedding-like data; every index here builds in well under a second."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from embedlab_bidr import BiDRIndex

#: 8 subspaces x 16 centroids on 32-d vectors: coarse codes, so re-scoring has work to do.
FAST = {"m": 8, "ksub": 16, "kmeans_iterations": 8, "candidates": 50}


def embedding_like(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 16 cluster centres, with a decaying spectrum (as sentence embeddings)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((16, d)) / np.sqrt(np.arange(1, d + 1))
    x = centres[rng.integers(0, 16, n)] + 0.3 * rng.standard_normal((n, d)) / np.sqrt(np.arange(1, d + 1))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def docs() -> np.ndarray:
    return embedding_like(1500)


@pytest.fixture(scope="session")
def queries() -> np.ndarray:
    return embedding_like(60, seed=1)


@pytest.fixture(scope="session")
def fast() -> dict:
    return dict(FAST)


@pytest.fixture(scope="session")
def make_vectors() -> Callable[..., np.ndarray]:
    """:func:`embedding_like` for tests that need other sizes."""
    return embedding_like


@pytest.fixture()
def built(docs: np.ndarray, tmp_path) -> BiDRIndex:  # type: ignore[no-untyped-def]
    index = BiDRIndex(**FAST, storage_dir=str(tmp_path / "work"))
    index.build(docs)
    return index
