"""Components with sub-parts for the kill-during-save tests: ``<name>(version)`` builds one,
``probe`` tells versions apart (search results and scores)."""

from __future__ import annotations

import numpy as np

from embedlab.index import ExactIndex
from embedlab.pq_compressor import PQCompressor

QUERIES = np.random.default_rng(99).standard_normal((8, 16)).astype(np.float32)


def exact_pq(version: int, n: int = 1000) -> ExactIndex:
    """An exact index over PQ codes (the part ``compressor/``); versions differ in every array."""
    x = np.random.default_rng(version).standard_normal((n, 16)).astype(np.float32)
    index = ExactIndex(metric="l2")
    index.use_compressor(PQCompressor(m=4, ksub=16, iterations=2, seed=version).fit(x[:500]))
    index.build(x, attributes={"version": np.full(n, version)})
    return index


def probe(component: object) -> np.ndarray:
    result = component.search(QUERIES, k=5)
    return np.concatenate([result.indices.ravel(), result.scores.ravel().view(np.int32)])
