"""Differentiable product quantisation with frozen assignments (PyTorch).

Every document keeps the centroid ids it got once (``codes``, ``(n, m)``); only the centroid
*values* ``(m, ksub, dsub)`` are trainable. A document's reconstruction is the concatenation of
its selected centroids, so the gradient of any score ``<q, d_hat>`` reaches exactly the centroids
that the scored documents use. Searching the current centroids ("the live index") is the same
asymmetric distance computation as :meth:`embedlab.pq.Codebooks.scores`.

Shared by the JPQ trainer; usable by any method that fine-tunes PQ centroids (Distill-VQ, ...).
:class:`FloatDocuments` has the same search/score interface over uncompressed vectors: the supervised
control that trains the query side against the float index instead of the codes.

>>> pq = FrozenPQ(codebooks.centroids, codes)                       # doctest: +SKIP
>>> scores = pq.candidate_scores(query_tensor, candidate_positions)   # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from embedlab.pq import Codebooks

#: Documents reconstructed at once by :meth:`FrozenPQ.search` (bounds its temporary memory).
SEARCH_BLOCK = 65536


class FrozenPQ(nn.Module):
    """Trainable centroids ``(m, ksub, dsub)`` over fixed ``(n, m)`` document codes."""

    def __init__(self, centroids: np.ndarray, codes: np.ndarray) -> None:
        super().__init__()
        books = Codebooks(centroids)
        codes = books.check_codes(codes)
        self.centroids = nn.Parameter(torch.from_numpy(books.centroids.copy()))
        self.register_buffer("codes", torch.from_numpy(codes.astype(np.int64)))
        self.register_buffer("subspaces", torch.arange(books.m))

    @property
    def m(self) -> int:
        return self.centroids.shape[0]

    def reconstruct(self, positions: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(*positions.shape, d)`` of the documents at ``positions``."""
        codes = self.codes[positions]  # (..., m)
        parts = self.centroids[self.subspaces.expand_as(codes), codes]  # (..., m, dsub)
        return parts.flatten(-2)

    def candidate_scores(self, queries: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``(b, l)`` inner products of query ``i`` with the documents ``positions[i]`` (``(b, l)``)."""
        return torch.einsum("bd,bld->bl", queries, self.reconstruct(positions))

    @torch.no_grad()
    def search(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """``(b, k)`` positions of the ``k`` best documents under the current centroids, best first."""
        n = len(self.codes)
        scores = torch.empty((len(queries), n), dtype=queries.dtype)
        for start in range(0, n, SEARCH_BLOCK):
            block = torch.arange(start, min(n, start + SEARCH_BLOCK))
            scores[:, start:start + len(block)] = queries @ self.reconstruct(block).T
        return torch.topk(scores, min(k, n), dim=1).indices

    def codebooks(self) -> Codebooks:
        """The current centroids as core :class:`embedlab.pq.Codebooks` (a copy)."""
        return Codebooks(self.centroids.detach().numpy().copy())


class FloatDocuments(nn.Module):
    """Fixed float document vectors ``(n, d)`` with :class:`FrozenPQ`'s interface (``search``,
    ``candidate_scores``) and nothing to train: the query side is trained against the uncompressed
    index (the control that removes quantisation from JPQ's training)."""

    def __init__(self, vectors: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("vectors", torch.from_numpy(np.ascontiguousarray(vectors, dtype=np.float32)))

    def candidate_scores(self, queries: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """``(b, l)`` inner products of query ``i`` with the documents ``positions[i]``."""
        return torch.einsum("bd,bld->bl", queries, self.vectors[positions])

    @torch.no_grad()
    def search(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """``(b, k)`` positions of the ``k`` best documents by inner product, best first."""
        return torch.topk(queries @ self.vectors.T, min(k, len(self.vectors)), dim=1).indices
