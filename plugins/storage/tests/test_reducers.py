"""Reducers against references (scikit-learn PCA and KernelPCA) and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from embedlab_storage import StorageCompressor
from sklearn.decomposition import PCA as SkPCA
from sklearn.decomposition import KernelPCA as SkKernelPCA


def test_pca_reconstruction_matches_scikit_learn(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="pca:0.25").fit(vectors)
    reference = SkPCA(n_components=12).fit(vectors)
    ours = compressor.decode(compressor.encode(vectors))
    np.testing.assert_allclose(ours, reference.inverse_transform(reference.transform(vectors)), atol=2e-5)
    # Codes are the principal coordinates, up to the sign of each component.
    np.testing.assert_allclose(np.abs(compressor.encode(vectors)), np.abs(reference.transform(vectors)),
                               atol=1e-4)


@pytest.mark.parametrize(("kernel", "params"), [("rbf", {"gamma": 2.0}), ("poly", {"gamma": 0.5}),
                                                 ("cosine", {}), ("linear", {})])
def test_kernel_pca_coordinates_match_scikit_learn(kernel: str, params: dict, vectors: np.ndarray,
                                                   queries: np.ndarray) -> None:
    compressor = StorageCompressor(spec="kpca:0.25", kpca_kernel=kernel, kpca_gamma=params.get("gamma"),
                                   reference_size=len(vectors)).fit(vectors)
    reference = SkKernelPCA(n_components=12, kernel=kernel, degree=3, coef0=1, **params).fit(vectors)
    ours, theirs = compressor.encode(queries), reference.transform(queries)
    signs = np.sign(np.sum(ours * theirs, axis=0))
    np.testing.assert_allclose(ours, theirs * signs, atol=1e-4)


def test_linear_kernel_pca_decodes_like_pca(vectors: np.ndarray, queries: np.ndarray) -> None:
    kpca = StorageCompressor(spec="kpca:0.25", kpca_kernel="linear", reference_size=400).fit(vectors)
    pca = StorageCompressor(spec="pca:0.25").fit(vectors)
    np.testing.assert_allclose(kpca.decode(kpca.encode(queries)), pca.decode(pca.encode(queries)), atol=1e-4)


def test_kernel_pca_reference_sample_is_seeded(vectors: np.ndarray) -> None:
    one = StorageCompressor(spec="kpca:0.25", reference_size=100, seed=1).fit(vectors).encode(vectors)
    again = StorageCompressor(spec="kpca:0.25", reference_size=100, seed=1).fit(vectors).encode(vectors)
    other = StorageCompressor(spec="kpca:0.25", reference_size=100, seed=2).fit(vectors).encode(vectors)
    np.testing.assert_array_equal(one, again)
    assert not np.allclose(np.abs(one), np.abs(other), atol=1e-3)


def _projection(spec: str, d: int = 400, seed: int = 0) -> np.ndarray:
    compressor = StorageCompressor(spec=spec, seed=seed).fit(np.zeros((1, d), np.float32))
    return compressor._fitted.reducer.decoder.astype(np.float64)


def test_gaussian_projection_entries_have_variance_one_over_k() -> None:
    r = _projection("grp:0.25")
    assert r.shape == (100, 400)
    assert abs(r.mean()) < 0.003 and r.var() * 100 == pytest.approx(1, rel=0.02)


def test_sparse_projection_is_very_sparse_with_the_right_scale() -> None:
    r = _projection("srp:0.25")
    density = 1 / math.sqrt(400)
    assert np.mean(r != 0) == pytest.approx(density, rel=0.1)
    np.testing.assert_allclose(np.unique(np.abs(r[r != 0])), [1 / math.sqrt(density * 100)])
    assert np.mean(r > 0) == pytest.approx(np.mean(r < 0), rel=0.15)


@pytest.mark.parametrize("spec", ["grp:0.5", "srp:0.5"])
def test_random_projections_estimate_inner_products_without_bias(spec: str) -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 256)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    compressor = StorageCompressor(spec=spec).fit(x)
    estimate = compressor.score(x[:50], compressor.encode(x)).astype(np.float64)
    error = estimate - x[:50].astype(np.float64) @ x.T
    assert abs(error.mean()) < 0.01
    assert error.std() == pytest.approx(math.sqrt(1 / 128), rel=0.15)  # Var = (1 + <x,y>^2) / k


def test_autoencoder_learns_a_low_dimensional_structure() -> None:
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((600, 4))
    x = np.tanh(latent @ rng.standard_normal((4, 32))).astype(np.float32)
    compressor = StorageCompressor(spec="ae:0.125", ae_hidden=(64,), ae_epochs=15, ae_lr=3e-3).fit(x)
    error = np.mean((compressor.decode(compressor.encode(x)) - x) ** 2)
    assert error < 0.1 * np.mean((x - x.mean(0)) ** 2)  # explains over 90% of the variance


def _clusters(n_per: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).standard_normal((3, 48)) * 3
    labels = np.repeat(np.arange(3), n_per)
    x = (centres[labels] + rng.standard_normal((len(labels), 48))).astype(np.float32)
    return x, labels


def test_umap_gets_the_paper_parameters_and_places_new_vectors_near_their_cluster(fake_umap: list) -> None:
    train, labels = _clusters(60, seed=0)
    compressor = StorageCompressor(spec="umap:0.25", seed=7, umap_neighbors=10).fit(train)
    assert fake_umap[-1] == {"n_components": 12, "n_neighbors": 10, "min_dist": 0.1, "metric": "cosine",
                             "random_state": 7, "n_jobs": 1}
    reference = compressor._fitted.reducer
    centroids = np.stack([reference.embedding[labels == c].mean(0) for c in range(3)])
    new, new_labels = _clusters(20, seed=1)
    codes = compressor.encode(new)
    nearest = np.argmin(((codes[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(nearest, new_labels)
