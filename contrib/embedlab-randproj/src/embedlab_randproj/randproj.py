"""Gaussian random projection: ``codes = vectors @ R.T`` with ``R[i, j] ~ N(0, 1/k)``.

With this scaling ``E[R.T @ R] = I``, so ``<R x, R y>`` is an unbiased estimate of ``<x, y>``
and, by the Johnson-Lindenstrauss lemma, ``k >= jl_min_dim(n, eps)`` keeps every pairwise
squared distance of ``n`` points within a factor ``1 +- eps`` with probability at least ``1 - 1/n``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np

import embedlab
from embedlab.embeddings import as_dense
from embedlab.persistence import load_state, save_state

DECODERS = ("transpose", "pinv")
_v = attrs.validators


def jl_min_dim(n_points: int, eps: float) -> int:
    """Smallest ``k`` for which the Johnson-Lindenstrauss bound (Dasgupta and Gupta, 2003) keeps
    ``n_points`` points' squared distances within ``1 +- eps``: ``4 ln n / (eps^2/2 - eps^3/3)``."""
    if not 0 < eps < 1:
        raise embedlab.ConfigError(f"jl_min_dim: eps must be in (0, 1), got {eps}")
    if n_points < 1:
        raise embedlab.ConfigError(f"jl_min_dim: n_points must be at least 1, got {n_points}")
    return int(4 * math.log(n_points) / (eps**2 / 2 - eps**3 / 3))


def _exactly_one_size(config: Any, attribute: Any, value: Any) -> None:
    if (config.dim is None) == (value is None):
        raise ValueError("give exactly one of dim (output dimension) or ratio (output dimension / "
                         "input dimension)")


class RandomProjection(embedlab.Component):
    """Gaussian random projection to ``dim`` (or ``ratio * d``) float32 dimensions."""

    kind = "compressor"
    name = "randproj"

    @attrs.frozen
    class Config:
        dim: int | None = attrs.field(default=None, validator=_v.optional([_v.instance_of(int), _v.ge(1)]))
        ratio: float | None = attrs.field(default=None, validator=[
            _v.optional([_v.instance_of((int, float)), _v.gt(0), _v.le(1)]), _exactly_one_size])
        seed: int = attrs.field(default=0, validator=[_v.instance_of(int), _v.ge(0)])
        decoder: str = attrs.field(default="transpose", validator=_v.in_(DECODERS))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.projection: np.ndarray | None = None
        self._decoding: np.ndarray | None = None

    def output_dim(self, input_dim: int) -> int:
        """Code dimension ``k`` for inputs of dimension ``input_dim``."""
        if self.config.dim is not None:
            return self.config.dim
        return max(1, round(self.config.ratio * input_dim))

    def fit(self, vectors: np.ndarray) -> RandomProjection:
        """Draw ``R`` for the dimension of ``vectors`` (only their shape is used: the projection
        is data-oblivious and depends on ``seed`` alone)."""
        input_dim = as_dense(vectors, name=f"{self.name} fit vectors").shape[1]
        k = self.output_dim(input_dim)
        if k > input_dim:
            raise embedlab.InvalidInputError(f"{self.name}: dim {k} exceeds the input dimension "
                                             f"{input_dim}; a projection cannot compress upwards")
        gaussian = np.random.default_rng(self.config.seed).standard_normal((k, input_dim))
        self._set_projection((gaussian / math.sqrt(k)).astype(np.float32))
        return self

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, d)`` float vectors to ``(n, k)`` float32 codes ``vectors @ R.T``."""
        projection = self._fitted()
        return as_dense(vectors, dim=projection.shape[1], name=f"{self.name} vectors") @ projection.T

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, k)`` codes to ``(n, d)`` vectors: ``R.T @ c`` (``decoder="transpose"``, so that
        float queries score decoded vectors with the unbiased estimate ``<R q, R x>``) or
        ``pinv(R) @ c`` (``decoder="pinv"``, the least-squares reconstruction: the projection of
        ``x`` on the row space of ``R``, with ``encode(decode(c)) == c``)."""
        projection = self._fitted()
        codes = as_dense(codes, dim=projection.shape[0], name=f"{self.name} codes")
        if self._decoding is None:
            self._decoding = (projection if self.config.decoder == "transpose"
                              else np.linalg.pinv(projection.astype(np.float64)).T.astype(np.float32))
        return codes @ self._decoding

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(n_queries, n_codes)`` inner products ``<R q, R x>`` without decoding."""
        projection = self._fitted()
        codes = as_dense(codes, dim=projection.shape[0], name=f"{self.name} codes")
        return self.encode(queries) @ codes.T

    @property
    def bytes_per_vector(self) -> float:
        return float(self._fitted().shape[0] * np.dtype(np.float32).itemsize)

    def save(self, path: str | Path) -> None:
        """Write the config and ``R`` (the matrix itself: numpy does not promise the same random
        stream across versions, so the seed alone would not reproduce it)."""
        save_state(path, self, arrays={"projection": self._fitted()})

    @classmethod
    def load(cls, path: str | Path) -> RandomProjection:
        """Read a compressor written by :meth:`save` (checksums, dtype and shape verified)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        compressor = state.build(cls)
        projection = state.array("projection", kinds="f", ndim=2, finite=True)
        if projection.shape[1] < 1 or projection.shape[0] != compressor.output_dim(projection.shape[1]):
            raise state.error(f"projection of shape {projection.shape} does not match the config {state.config}")
        compressor._set_projection(np.asarray(projection, dtype=np.float32))
        return compressor

    def _set_projection(self, projection: np.ndarray) -> None:
        self.projection = projection
        self._decoding = None

    def _fitted(self) -> np.ndarray:
        if self.projection is None:
            raise embedlab.NotFittedError(f"{self.name}: call fit(vectors) first")
        return self.projection
