"""Seeded multi-vector test data: clustered unit vectors, like token embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from embedlab import MultiVectorEmbeddings


def clustered_clouds(rng: np.random.Generator, n_items: int, sizes: tuple[int, int], dim: int,
                     centers: np.ndarray, noise: float = 0.3) -> MultiVectorEmbeddings:
    """``n_items`` sets of unit vectors, each vector a noisy copy of a random center."""
    items = []
    for _ in range(n_items):
        picked = centers[rng.integers(0, len(centers), rng.integers(sizes[0], sizes[1] + 1))]
        points = picked + noise * rng.standard_normal(picked.shape)
        items.append(points / np.linalg.norm(points, axis=1, keepdims=True))
    return MultiVectorEmbeddings.from_list(items, dim=dim)


@pytest.fixture
def corpus() -> tuple[MultiVectorEmbeddings, MultiVectorEmbeddings]:
    """(queries, documents): 12 queries of 4-10 vectors, 200 documents of 10-40 vectors, 32-d."""
    rng = np.random.default_rng(7)
    centers = rng.standard_normal((40, 32))
    return (clustered_clouds(rng, 12, (4, 10), 32, centers),
            clustered_clouds(rng, 200, (10, 40), 32, centers))
