"""Random walks on a CSR graph, all walks advanced together with numpy (node2vec, DeepWalk and IRWE
sample their walks here).

First-order walks (DeepWalk, node2vec with ``p = q = 1``) pick the next node in proportion to the
edge weight: one ``searchsorted`` into the cumulative weights of the current rows. Second-order
walks (node2vec's ``p``, ``q``) use rejection sampling (as KnightKing and PecanPy do): propose a
first-order step to ``x`` from ``v`` (having come from ``t``) and accept it with probability
``bias(t, x) / max(1/p, 1, 1/q)``, where ``bias = 1/p`` if ``x = t``, ``1`` if ``x`` is a neighbour
of ``t`` and ``1/q`` otherwise; rejected walks propose again. The result follows node2vec's
transition probabilities exactly.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


class Walker:
    """Draws walks on one graph (adjacency rows must have at least one entry)."""

    def __init__(self, adjacency: sp.csr_matrix) -> None:
        self.adjacency = sp.csr_matrix(adjacency)
        self.adjacency.sort_indices()
        self.n = self.adjacency.shape[0]
        self.cumulative = np.cumsum(self.adjacency.data, dtype=np.float64)
        indptr = self.adjacency.indptr
        self.row_start = np.concatenate([[0.0], self.cumulative])[indptr[:-1]]
        self.row_weight = np.concatenate([[0.0], self.cumulative])[indptr[1:]] - self.row_start
        rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(indptr))
        self.keys = rows * self.n + self.adjacency.indices  # sorted: CSR rows, sorted columns

    def step(self, current: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One weighted first-order step from every node of ``current``."""
        target = self.row_start[current] + rng.random(current.size) * self.row_weight[current]
        slot = np.searchsorted(self.cumulative, target, side="right")
        slot = np.minimum(slot, self.adjacency.indptr[current + 1] - 1)  # float round-off at a row's end
        return self.adjacency.indices[slot]

    def is_edge(self, sources: np.ndarray, targets: np.ndarray) -> np.ndarray:
        keys = sources.astype(np.int64) * self.n + targets
        found = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return self.keys[found] == keys

    def walks(self, starts: np.ndarray, length: int, rng: np.random.Generator, p: float = 1.0,
              q: float = 1.0) -> np.ndarray:
        """``(len(starts), length)`` int64 walks, one from each start node."""
        walks = np.empty((starts.size, length), dtype=np.int64)
        walks[:, 0] = starts
        if length > 1:
            walks[:, 1] = self.step(starts, rng)
        first_order = p == 1.0 and q == 1.0
        ceiling = max(1.0 / p, 1.0, 1.0 / q)
        for t in range(2, length):
            current, previous = walks[:, t - 1], walks[:, t - 2]
            if first_order:
                walks[:, t] = self.step(current, rng)
                continue
            pending = np.arange(starts.size)
            while pending.size:
                proposal = self.step(current[pending], rng)
                back = proposal == previous[pending]
                bias = np.where(back, 1.0 / p,
                                np.where(self.is_edge(previous[pending], proposal), 1.0, 1.0 / q))
                accepted = rng.random(pending.size) * ceiling < bias
                walks[pending[accepted], t] = proposal[accepted]
                pending = pending[~accepted]
        return walks
