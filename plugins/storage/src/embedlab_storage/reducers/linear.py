"""Linear reducers: PCA and the two random projections of the paper (Gaussian, very sparse)."""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from embedlab_storage.reducers.base import Reducer, sign_convention


class PCA(Reducer):
    """Principal components of the fit vectors: ``z = (x - mean) @ W.T``, ``x ~ z @ W + mean``.

    Computed by numpy (eigendecomposition of the float64 covariance, ``d x d``), so that no
    scikit-learn model has to be pickled; signs follow the largest-entry-positive convention.
    """

    method = "pca"

    def fit(self, vectors: np.ndarray) -> None:
        mean = vectors.mean(axis=0, dtype=np.float64)
        centred = vectors - mean
        _, eigenvectors = np.linalg.eigh(centred.T @ centred)
        top = sign_convention(eigenvectors[:, ::-1][:, :self.output_dim])
        self.decoder = np.ascontiguousarray(top.T, dtype=np.float32)
        self.bias = mean.astype(np.float32)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self.bias) @ self.decoder.T


class RandomProjection(Reducer):
    """``z = x @ R.T`` for a seeded random ``R`` scaled so that ``E[R.T @ R] = I``; decoding by
    ``R.T`` makes ``q . decode(z)`` the Johnson-Lindenstrauss estimate ``<R q, R x>``.
    Only the dimension of the fit vectors is used."""

    data_fitted = False

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def fit(self, vectors: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self.decoder = np.ascontiguousarray(self.draw(rng), dtype=np.float32)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        return vectors @ self.decoder.T

    def shapes(self) -> dict[str, tuple[int | str, ...]]:
        return {"decoder": (self.output_dim, self.input_dim)}

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        super().restore(arrays)
        self.bias = np.zeros(self.input_dim, np.float32)


class GaussianProjection(RandomProjection):
    """``R[i, j] ~ N(0, 1/k)`` (scikit-learn's GaussianRandomProjection, as in the paper)."""

    method = "grp"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        return rng.standard_normal((self.output_dim, self.input_dim)) / math.sqrt(self.output_dim)


class SparseProjection(RandomProjection):
    """Very sparse projection (Li, Hastie and Church, 2006): density ``s = 1/sqrt(d)``, entries
    ``+-1/sqrt(s k)`` with probability ``s/2`` each and 0 otherwise (scikit-learn's
    SparseRandomProjection with ``density="auto"``). Stored dense: ``k x d`` floats are small."""

    method = "srp"

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        density = 1 / math.sqrt(self.input_dim)
        shape = (self.output_dim, self.input_dim)
        nonzero = rng.random(shape) < density
        signs = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
        return nonzero * signs / math.sqrt(density * self.output_dim)
