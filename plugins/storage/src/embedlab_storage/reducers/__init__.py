"""Dimensionality reducers of the storage compressor, built from a parsed spec and its options."""

from __future__ import annotations

from typing import Any

from embedlab_storage.reducers.autoencoder import Autoencoder
from embedlab_storage.reducers.base import Reducer
from embedlab_storage.reducers.kernel import KERNELS, KernelPCA
from embedlab_storage.reducers.linear import PCA, GaussianProjection, SparseProjection
from embedlab_storage.reducers.manifold import UMAP
from embedlab_storage.spec import ReducerSpec


def make_reducer(spec: ReducerSpec, input_dim: int, seed: int, options: Any) -> Reducer:
    """The reducer ``spec`` names for ``input_dim``-dimensional vectors; ``options`` is the
    compressor's config (``kpca_*``, ``umap_*``, ``ae_*`` and ``reference_size`` fields)."""
    k = spec.output_dim(input_dim)
    if spec.method == "pca":
        return PCA(input_dim, k, seed)
    if spec.method == "grp":
        return GaussianProjection(input_dim, k, seed)
    if spec.method == "srp":
        return SparseProjection(input_dim, k, seed)
    if spec.method == "kpca":
        return KernelPCA(input_dim, k, seed, kernel=options.kpca_kernel, gamma=options.kpca_gamma,
                         reference_size=options.reference_size)
    if spec.method == "umap":
        return UMAP(input_dim, k, seed, n_neighbors=options.umap_neighbors,
                    min_dist=options.umap_min_dist, reference_size=options.reference_size)
    return Autoencoder(input_dim, k, seed, hidden=options.ae_hidden, epochs=options.ae_epochs,
                       lr=options.ae_lr, batch_size=options.ae_batch_size)


__all__ = ["KERNELS", "Reducer", "make_reducer"]
