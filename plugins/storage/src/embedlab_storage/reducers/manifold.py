"""UMAP (optional: ``pip install 'embedlab-storage[umap]'``), saved as plain arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab_storage.reducers.base import (
    Reducer,
    fit_linear_preimage,
    import_optional,
    normalise_rows,
    reference_sample,
    row_blocks,
)


def import_umap() -> Any:
    """The ``umap`` module of umap-learn, or a ConfigError naming the extra to install."""
    return import_optional("umap", "umap", "umap-learn", "umap")


class UMAP(Reducer):
    """UMAP (McInnes et al., 2018; cosine metric, as in the paper) fitted by umap-learn on a
    reference sample (at most ``reference_size`` fit vectors, drawn with the seed).

    umap-learn's own ``transform`` needs its nearest-neighbour index, which cannot be saved
    without pickle; new vectors are therefore placed as umap-learn initialises them before its
    refinement epochs: at the mean of the UMAP coordinates of their ``n_neighbors`` nearest
    reference vectors (cosine), weighted ``exp(-(d - d_min) / mean(d - d_min))``. Decoding is the
    least-squares affine map from coordinates back to vectors on the reference sample.
    """

    method = "umap"

    def __init__(self, input_dim: int, output_dim: int, seed: int, *, n_neighbors: int = 15,
                 min_dist: float = 0.1, reference_size: int = 4000) -> None:
        super().__init__(input_dim, output_dim, seed)
        self.n_neighbors, self.min_dist, self.reference_size = n_neighbors, min_dist, reference_size

    def min_fit_vectors(self) -> int:
        # umap-learn's spectral initialisation needs n > output_dim + 1 and n > n_neighbors.
        return max(self.output_dim + 2, self.n_neighbors + 1)

    def fit(self, vectors: np.ndarray) -> None:
        umap = import_umap()
        reference = reference_sample(vectors, self.reference_size, self.seed).astype(np.float32)
        model = umap.UMAP(n_components=self.output_dim, n_neighbors=self.n_neighbors,
                          min_dist=self.min_dist, metric="cosine", random_state=self.seed, n_jobs=1)
        self.reference = reference
        self.embedding = np.asarray(model.fit_transform(reference), dtype=np.float32)
        self.after_restore()
        self.decoder, self.bias = fit_linear_preimage(self.transform(reference), reference)

    def after_restore(self) -> None:
        self._unit_reference = normalise_rows(self.reference.astype(np.float32))

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        neighbours = min(self.n_neighbors, len(self.reference))
        out = np.empty((len(vectors), self.output_dim), np.float32)
        for rows in row_blocks(len(vectors)):
            distances = 1 - normalise_rows(vectors[rows]) @ self._unit_reference.T
            nearest = np.argpartition(distances, neighbours - 1, axis=1)[:, :neighbours]
            near = np.take_along_axis(distances, nearest, axis=1)
            near = near - near.min(axis=1, keepdims=True)
            spread = near.mean(axis=1, keepdims=True)
            weights = np.exp(-near / np.where(spread > 0, spread, 1))
            weights /= weights.sum(axis=1, keepdims=True)
            out[rows] = np.einsum("nk,nkd->nd", weights, self.embedding[nearest])
        return out

    def shapes(self) -> dict[str, tuple[int | str, ...]]:
        return {"reference": ("m", self.input_dim), "embedding": ("m", self.output_dim),
                **super().shapes()}
