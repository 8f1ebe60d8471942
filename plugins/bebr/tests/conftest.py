"""Small embedding-like data and a shared fitted compressor (fits take about a second)."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_bebr import BEBRCompressor

FAST = {"epochs": 4, "lr": 1e-2, "hidden": (32,), "batch_size": 64, "neighbours": 4, "num_threads": 1}


def embedding_like(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 16 cluster centres, with a decaying spectrum (as sentence embeddings)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((16, d)) / np.sqrt(np.arange(1, d + 1))
    x = centres[rng.integers(0, 16, n)] + 0.3 * rng.standard_normal((n, d)) / np.sqrt(np.arange(1, d + 1))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def vectors() -> np.ndarray:
    return embedding_like(512)


@pytest.fixture(scope="session")
def queries() -> np.ndarray:
    return embedding_like(30, seed=1)


@pytest.fixture(scope="session")
def fast() -> dict:
    """Training options that fit the test data in about a second."""
    return dict(FAST)


@pytest.fixture(scope="session")
def fitted(vectors: np.ndarray) -> BEBRCompressor:
    """2 bits per dimension, 32 signs per loop: 8-byte codes."""
    return BEBRCompressor(bits_per_dim=2, **FAST).fit(vectors)
