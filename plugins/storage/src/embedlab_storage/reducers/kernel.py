"""Kernel PCA on a reference sample, with a least-squares linear pre-image as decoder."""

from __future__ import annotations

import numpy as np
import scipy.linalg

from embedlab.errors import InvalidInputError
from embedlab_storage.reducers.base import (
    Reducer,
    fit_linear_preimage,
    normalise_rows,
    reference_sample,
    row_blocks,
    sign_convention,
)

KERNELS = ("rbf", "poly", "cosine", "linear")
POLY_DEGREE, POLY_COEF0 = 3, 1.0  # scikit-learn's KernelPCA defaults


class KernelPCA(Reducer):
    """Kernel PCA (Schoelkopf et al., 1998) computed as scikit-learn's ``KernelPCA.transform`` does:
    eigenvectors of the centred ``m x m`` kernel matrix of a reference sample (at most
    ``reference_size`` fit vectors, drawn with the seed), scaled by ``1/sqrt(eigenvalue)``; a new
    vector's centred kernel row times those gives its coordinates. Decoding is the affine map from
    coordinates back to vectors fitted by least squares on the reference sample (exactly PCA's
    reconstruction with the linear kernel). Kernels: ``rbf`` ``exp(-gamma |x - y|^2)``, ``poly``
    ``(gamma x.y + 1)^3``, ``cosine``, ``linear``; ``gamma`` defaults to ``1 / input_dim``.
    """

    method = "kpca"

    def __init__(self, input_dim: int, output_dim: int, seed: int, *, kernel: str = "rbf",
                 gamma: float | None = None, reference_size: int = 4000) -> None:
        super().__init__(input_dim, output_dim, seed)
        self.kernel, self.reference_size = kernel, reference_size
        self.gamma = gamma if gamma is not None else 1.0 / input_dim

    def kernel_matrix(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = a.astype(np.float64), b.astype(np.float64)
        if self.kernel == "cosine":
            return normalise_rows(a) @ normalise_rows(b).T
        products = a @ b.T
        if self.kernel == "linear":
            return products
        if self.kernel == "poly":
            return (self.gamma * products + POLY_COEF0) ** POLY_DEGREE
        squared = np.sum(a**2, axis=1)[:, None] + np.sum(b**2, axis=1)[None, :] - 2 * products
        return np.exp(-self.gamma * np.maximum(squared, 0))

    def fit(self, vectors: np.ndarray) -> None:
        reference = reference_sample(vectors, self.reference_size, self.seed)
        m, k = len(reference), self.output_dim
        kernel = self.kernel_matrix(reference, reference)
        column_means = kernel.mean(axis=0)
        total_mean = column_means.mean()
        centred = kernel - column_means[None, :] - column_means[:, None] + total_mean
        values, vectors_ = scipy.linalg.eigh(centred, subset_by_index=[m - k, m - 1])
        values, vectors_ = values[::-1], vectors_[:, ::-1]
        if values[-1] <= 1e-10 * max(values[0], 1e-300):
            raise InvalidInputError(f"kpca: the centred {self.kernel} kernel matrix of the {m} "
                                    f"reference vectors has fewer than {k} positive eigenvalues; "
                                    "fit on more (distinct) vectors or keep fewer dimensions")
        self.reference = reference.astype(np.float32)
        self.alphas = (sign_convention(vectors_) / np.sqrt(values)).astype(np.float32)
        self.column_means = column_means.astype(np.float32)
        self.total_mean = np.asarray([total_mean], np.float32)
        self.decoder, self.bias = fit_linear_preimage(self.transform(self.reference), self.reference)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        out = np.empty((len(vectors), self.output_dim), np.float32)
        for rows in row_blocks(len(vectors)):
            block = self.kernel_matrix(vectors[rows], self.reference)
            block -= block.mean(axis=1, keepdims=True)
            block -= self.column_means
            block += self.total_mean
            out[rows] = block @ self.alphas
        return out

    def shapes(self) -> dict[str, tuple[int | str, ...]]:
        return {"reference": ("m", self.input_dim), "alphas": ("m", self.output_dim),
                "column_means": ("m",), "total_mean": (1,), **super().shapes()}
