"""Small clustered embedding-like data with labelled queries; fits take well under a second."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
from embedlab_jpq import JPQCompressor

#: 8 subspaces x 32 centroids on 32-d vectors: coarse enough that training has room to help.
FAST = {"m": 8, "ksub": 32, "epochs": 10, "lr": 3e-3, "query_lr": 3e-3, "validation_fraction": 0.0, "temperature": 0.05,
        "lambda_cut": 10, "top_k": 50, "batch_size": 16, "num_threads": 1,
        "show_progress": False, "kmeans_iterations": 10}


def embedding_like(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    """Unit vectors around 16 cluster centres, with a decaying spectrum (as sentence embeddings)."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((16, d)) / np.sqrt(np.arange(1, d + 1))
    x = centres[rng.integers(0, 16, n)] + 0.3 * rng.standard_normal((n, d)) / np.sqrt(np.arange(1, d + 1))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def labelled_queries(docs: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, list[list[int]]]:
    """Queries near a random document (its noisy copy); that document is the relevant one."""
    rng = np.random.default_rng(seed)
    targets = rng.choice(len(docs), n, replace=False)
    noisy = docs[targets] + 0.1 * rng.standard_normal((n, docs.shape[1])) / np.sqrt(docs.shape[1])
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32), [[int(t)] for t in targets]


@pytest.fixture(scope="session")
def docs() -> np.ndarray:
    return embedding_like(400)


@pytest.fixture(scope="session")
def labelled(docs: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    return labelled_queries(docs, 200, seed=1)


@pytest.fixture(scope="session")
def make_vectors() -> Callable[..., np.ndarray]:
    """:func:`embedding_like` for tests that need other sizes."""
    return embedding_like


@pytest.fixture(scope="session")
def fast() -> dict:
    return dict(FAST)


@pytest.fixture(scope="session")
def trained(docs: np.ndarray, labelled: tuple[np.ndarray, list[list[int]]]) -> JPQCompressor:
    queries, relevant = labelled
    return JPQCompressor(**FAST).fit(docs).train(docs, queries, relevant)
