"""The inductive random-walk statistics IRWE embeds (no node attributes, no node-id lookup table):

* **anonymous walks** (identity): a walk ``(v_0, ..., v_{l-1})`` becomes the pattern of first
  occurrences (``a b a c`` -> ``0 1 0 2``), which forgets *which* nodes were visited and keeps *how*
  the walk moved: the distribution of a node's anonymous walks describes its structural role and is
  the same for two nodes with the same neighbourhood shape anywhere, in any graph;
* **anchor reachability** (position): the expected number of visits of a ``T``-step random walk from
  ``v`` to each of ``K`` anchor nodes (``sum_t P^t[v, anchors]``), computed exactly with sparse
  products; nodes of the same region reach the same anchors, and a node added later gets its
  features from the same anchors.
"""

from __future__ import annotations

import itertools

import numpy as np
import scipy.sparse as sp

from embedlab.graph import Graph


def anonymous_patterns(length: int) -> np.ndarray:
    """Every anonymous walk of ``length`` nodes on a graph without self-loops: restricted growth
    strings starting at 0 whose consecutive entries differ; ``(n_patterns, length)``."""
    patterns = []
    for tail in itertools.product(range(length), repeat=length - 1):
        pattern = (0, *tail)
        if all(pattern[i] <= max(pattern[:i]) + 1 for i in range(1, length)) and \
                all(pattern[i] != pattern[i - 1] for i in range(1, length)):
            patterns.append(pattern)
    return np.asarray(patterns, dtype=np.int64)


class AnonymousWalks:
    """Maps walks to anonymous-walk ids (``0..n_patterns-1``) for one pattern length."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.patterns = anonymous_patterns(length)
        self._base = length ** np.arange(length)[::-1]
        codes = self.patterns @ self._base
        self._codes = np.sort(codes)
        self._ids = np.argsort(codes)

    @property
    def size(self) -> int:
        return len(self.patterns)

    def ids(self, walks: np.ndarray) -> np.ndarray:
        """Anonymous-walk id of the first ``length`` nodes of each walk."""
        prefix = walks[:, :self.length]
        pattern = np.zeros_like(prefix)
        for t in range(1, self.length):
            earlier = prefix[:, :t] == prefix[:, t:t + 1]
            seen = earlier.any(axis=1)
            first = np.argmax(earlier, axis=1)
            pattern[:, t] = np.where(seen, pattern[np.arange(len(prefix)), first], pattern[:, :t].max(axis=1) + 1)
        codes = pattern @ self._base
        return self._ids[np.searchsorted(self._codes, codes)]


def anchor_reachability(graph: Graph, anchors: np.ndarray, steps: int) -> np.ndarray:
    """``(n, K)``: ``log1p`` of the expected visits to each anchor in ``steps`` random-walk steps,
    scaled by ``K`` (uniform reach gives about ``log1p(steps)``)."""
    degrees = graph.degrees
    transition = sp.diags(1.0 / degrees) @ graph.adjacency
    current = np.zeros((graph.n_nodes, anchors.size))
    current[anchors, np.arange(anchors.size)] = 1.0
    visits = np.zeros_like(current)
    for _ in range(steps):
        current = transition @ current  # P^t[:, anchors]
        visits += current
    return np.log1p(visits * anchors.size).astype(np.float32)
