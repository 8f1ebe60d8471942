"""FastRP (the paper's Algorithm 1):

1. ``M = D^-1 S`` (the transition matrix; ``matrix="adjacency"`` uses ``S``), ``D`` the degrees;
2. ``R``: an ``(n, d)`` very sparse random projection, entries ``±sqrt(1 / (density d))`` with
   probability ``density / 2`` each and 0 otherwise, ``density = 1/sqrt(n)`` (Li et al., 2006);
   ``projection="gaussian"`` draws ``N(0, 1/d)`` entries instead;
3. degree weighting: ``N_1 = M diag(deg^beta) R``; ``beta < 0`` shrinks the weight of high-degree
   nodes in everyone's embedding;
4. ``N_i = M N_{i-1}`` for ``i = 2..q`` (``q = len(weights)``), never forming ``M^i``;
5. optionally L2-normalise the rows of every ``N_i`` (``normalization``), then ``N = sum_i
   weights[i] N_i``, and standardise every column (zero mean, unit variance).

Speed: ``M diag(deg^beta) R`` is a sparse-times-sparse product (``R`` has ``density`` nonzeros), the
powers are sparse-times-dense products in float32; nothing is ever ``n x n`` dense.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.errors import InvalidInputError
from embedlab.graph import Graph, NodeEncoder


def _weights(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _check_weights(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if not value or not all(np.isfinite(value)) or not any(value):
        raise ValueError(f"weights must be finite numbers, not all zero (one per power of M), got {list(value)}")


def _finite(instance: Any, attribute: attrs.Attribute, value: float) -> None:
    if not np.isfinite(value):
        raise ValueError(f"{attribute.name} must be finite, got {value!r}")


def _density(instance: Any, attribute: attrs.Attribute, value: float | None) -> None:
    if value is not None and not 0 < value <= 1:
        raise ValueError(f"density must be in (0, 1] (or None for 1/sqrt(n)), got {value!r}")


def sparse_projection(n: int, dim: int, rng: np.random.Generator, density: float | None = None) -> sp.csr_matrix:
    """``(n, dim)`` very sparse random projection (Achlioptas / Li et al.): each entry is
    ``±sqrt(1 / (density dim))`` with probability ``density / 2`` each, else 0."""
    density = 1.0 / np.sqrt(n) if density is None else density
    value = np.sqrt(1.0 / (density * dim))
    counts = rng.binomial(n, density, size=dim)
    rows = np.concatenate([rng.choice(n, size=c, replace=False) for c in counts]) if counts.sum() else np.zeros(0, int)
    cols = np.repeat(np.arange(dim), counts)
    signs = rng.choice(np.array([-value, value], dtype=np.float32), size=rows.size)
    return sp.csr_matrix((signs, (rows, cols)), shape=(n, dim), dtype=np.float32)


def fastrp_embedding(adjacency: sp.spmatrix, projection: sp.spmatrix | np.ndarray, weights: Sequence[float],
                     beta: float = 0.0, *, normalization: bool = False, transition: bool = True) -> np.ndarray:
    """Steps 1 and 3-5 above for a given projection ``R`` (step 2): ``(n, d)`` float32 embedding."""
    adjacency = sp.csr_matrix(adjacency, dtype=np.float32)
    degrees = np.asarray(adjacency.sum(axis=1), dtype=np.float64).ravel()
    if np.any(degrees <= 0):
        raise InvalidInputError("fastrp: every node needs an edge (the transition matrix divides by the degree)")
    matrix = sp.diags((1.0 / degrees).astype(np.float32)) @ adjacency if transition else adjacency
    matrix = sp.csr_matrix(matrix)
    weighted = sp.diags(np.power(degrees, beta).astype(np.float32)) @ projection
    current = matrix @ weighted
    current = current.toarray() if sp.issparse(current) else np.asarray(current)
    current = current.astype(np.float32, copy=False)
    total = np.zeros_like(current)
    for power, weight in enumerate(weights):
        if power:
            current = matrix @ current
        if weight:
            total += np.float32(weight) * (_normalise_rows(current) if normalization else current)
    return _standardise(total)


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _standardise(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance per column (a constant column becomes 0), as sklearn's ``scale``."""
    centred = x - x.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = centred.std(axis=0, dtype=np.float64)
    return centred / np.where(std > 0, std, 1.0).astype(np.float32)


class FastRP(NodeEncoder):
    """FastRP node embeddings (defaults: the paper's tuned BlogCatalog configuration, d = 512)."""

    name = "fastrp"

    @attrs.frozen
    class Config:
        dim: int = attrs.field(default=512, validator=attrs.validators.ge(1))
        #: alpha_1..alpha_q: the weight of each power of M (q = len(weights)).
        weights: tuple[float, ...] = attrs.field(default=(1.0, 1.0, 7.81, 45.28), converter=_weights,
                                                 validator=_check_weights)
        #: Degree-normalisation strength (the code's ``alpha``), usually in [-1, 0].
        beta: float = attrs.field(default=-0.628, converter=float, validator=_finite)
        normalization: bool = True
        projection: str = attrs.field(default="sparse", validator=attrs.validators.in_(("sparse", "gaussian")))
        matrix: str = attrs.field(default="transition", validator=attrs.validators.in_(("transition", "adjacency")))
        #: Share of nonzero projection entries; None = 1/sqrt(n) (the very sparse projection).
        density: float | None = attrs.field(default=None, validator=_density)
        seed: int = 0

    def projection_matrix(self, n: int) -> sp.csr_matrix | np.ndarray:
        """The seeded ``(n, dim)`` random projection this encoder uses on an ``n``-node graph."""
        rng = np.random.default_rng(self.config.seed)
        if self.config.projection == "gaussian":
            return (rng.standard_normal((n, self.config.dim)) / np.sqrt(self.config.dim)).astype(np.float32)
        return sparse_projection(n, self.config.dim, rng, self.config.density)

    def embed(self, graph: Graph) -> np.ndarray:
        return fastrp_embedding(graph.adjacency, self.projection_matrix(graph.n_nodes), self.config.weights,
                                self.config.beta, normalization=self.config.normalization,
                                transition=self.config.matrix == "transition")
