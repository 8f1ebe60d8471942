"""Embedding-like test vectors: unit-norm, with a decaying spectrum (as sentence embeddings have)."""

from __future__ import annotations

import sys
import types
from typing import Iterator

import numpy as np
import pytest


def embedding_like(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(1000 + seed)
    spectrum = 1.0 / np.sqrt(np.arange(1, d + 1))
    x = rng.standard_normal((n, d)) * spectrum @ np.linalg.qr(rng.standard_normal((d, d)))[0]
    x += 0.3 * rng.standard_normal(d) / np.sqrt(d) * np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="session")
def vectors() -> np.ndarray:
    """400 documents of dimension 48."""
    return embedding_like(400, 48)


@pytest.fixture(scope="session")
def queries() -> np.ndarray:
    return embedding_like(7, 48, seed=1)


@pytest.fixture(scope="session")
def fast() -> dict:
    """Options that keep the slow reducers fast on the test data."""
    return {"ae_epochs": 2, "ae_hidden": (32,), "reference_size": 300, "umap_neighbors": 8}


class FakeUMAP:
    """Stands in for ``umap.UMAP`` (whose numba compilation takes a minute): records its arguments
    and returns the leading principal coordinates, so that the plugin's own UMAP code (placement
    of new vectors, pre-image, persistence) runs for real. The real umap-learn runs in
    benchmarks/bench_storage.py."""

    calls: list[dict] = []

    def __init__(self, **params: object) -> None:
        FakeUMAP.calls.append(params)
        self.params = params

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[: self.params["n_components"]].T


@pytest.fixture(scope="module")
def fake_umap() -> Iterator[list[dict]]:
    """Install :class:`FakeUMAP` as the ``umap`` module; yields the recorded constructor calls."""
    module = types.ModuleType("umap")
    module.UMAP = FakeUMAP
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "umap", module)
        yield FakeUMAP.calls
