"""Small seeded data for the filtered-index tests: Gaussian vectors with real-looking attribute
columns (a category, a number with missing values, a string column with None)."""

from __future__ import annotations

import numpy as np
import pytest


def exact_top_k(docs: np.ndarray, queries: np.ndarray, k: int, mask: np.ndarray | None,
                metric: str = "ip") -> tuple[np.ndarray, np.ndarray]:
    """Exact filtered top-k in plain numpy (float64), ties to the lower position."""
    docs64, queries64 = docs.astype(np.float64), queries.astype(np.float64)
    if metric == "cosine":
        docs64 = docs64 / np.linalg.norm(docs64, axis=1, keepdims=True)
        queries64 = queries64 / np.linalg.norm(queries64, axis=1, keepdims=True)
    scores = queries64 @ docs64.T
    if metric == "l2":
        scores = -((queries64[:, None, :] - docs64[None, :, :]) ** 2).sum(axis=2)
    if mask is not None:
        scores = np.where(np.broadcast_to(mask, scores.shape), scores, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(docs.shape[0]), scores.shape), -scores), axis=1)[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isfinite(top), order, -1), top


def mean_recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's true (non-padding) top-k that was found."""
    values = [np.intersect1d(f[f >= 0], t[t >= 0]).size / (t >= 0).sum() for f, t in zip(found, truth)
              if (t >= 0).any()]
    return float(np.mean(values))


@pytest.fixture(scope="session")
def brute_force():
    """:func:`exact_top_k` (a fixture, so that tests need not import conftest)."""
    return exact_top_k


@pytest.fixture(scope="session")
def recall():
    """:func:`mean_recall`."""
    return mean_recall


@pytest.fixture(scope="session")
def data() -> dict:
    rng = np.random.default_rng(7)
    n, dim = 3000, 24
    docs = rng.standard_normal((n, dim)).astype(np.float32)
    queries = rng.standard_normal((60, dim)).astype(np.float32)
    size = rng.random(n) * 100
    size[rng.random(n) < 0.02] = np.nan  # missing values never pass a condition
    label = rng.choice(np.array(["a", "b", "c", "d"], dtype=object), n)
    label[:30] = None
    attributes = {"group": rng.integers(0, 40, n), "size": size, "label": label}
    return {"docs": docs, "queries": queries, "attributes": attributes}
