"""Random projection: JL guarantees on random data, determinism, decoding, persistence, errors."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from embedlab_randproj import RandomProjection, jl_min_dim

import embedlab


def unit_vectors(n: int, d: int, seed: int = 0) -> np.ndarray:
    # Offset the data seed: with the projection's own seed, R would be the data's first rows.
    x = np.random.default_rng(1000 + seed).standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_jl_min_dim_matches_scikit_learn() -> None:
    # sklearn.random_projection.johnson_lindenstrauss_min_dim(1e6, eps=[0.5, 0.1, 0.01])
    assert [jl_min_dim(10**6, eps) for eps in (0.5, 0.1, 0.01)] == [663, 11841, 1112658]
    assert jl_min_dim(40, 0.5) == 177


def test_every_pair_within_the_jl_bound() -> None:
    n, eps = 40, 0.5
    x = unit_vectors(n, 1024)
    compressor = RandomProjection(dim=jl_min_dim(n, eps), seed=3).fit(x)
    codes = compressor.encode(x).astype(np.float64)
    for i, j in itertools.combinations(range(n), 2):
        ratio = np.sum((codes[i] - codes[j]) ** 2) / np.sum((x[i] - x[j]) ** 2, dtype=np.float64)
        assert 1 - eps <= ratio <= 1 + eps, (i, j, ratio)
    # For unit vectors the polarization identity turns that into |<Rx, Ry> - <x, y>| <= eps.
    error = codes @ codes.T - x.astype(np.float64) @ x.T
    assert np.abs(error).max() <= eps


def test_inner_product_error_is_unbiased_with_variance_one_over_k() -> None:
    k = 64
    x = unit_vectors(300, 512, seed=1)
    codes = RandomProjection(dim=k, seed=0).fit(x).encode(x).astype(np.float64)
    exact = x.astype(np.float64) @ x.T
    upper = np.triu_indices(len(x), 1)
    error = (codes @ codes.T - exact)[upper]
    expected_std = np.sqrt(np.mean(1 + exact[upper] ** 2) / k)  # Var <Rx, Ry> = (1 + <x,y>^2) / k
    assert abs(error.mean()) < 0.2 * expected_std
    assert 0.85 < error.std() / expected_std < 1.15
    assert 0.9 < np.mean(np.sum(codes**2, axis=1)) < 1.1  # squared norms preserved on average


def test_ratio_sets_the_code_size() -> None:
    x = unit_vectors(10, 64)
    compressor = RandomProjection(ratio=0.25).fit(x)
    codes = compressor.encode(x)
    assert codes.shape == (10, 16) and codes.dtype == np.float32
    assert compressor.bytes_per_vector == 16 * 4 == codes.nbytes / len(x)


def test_deterministic_given_the_seed_and_independent_of_the_data() -> None:
    x, other = unit_vectors(20, 32), unit_vectors(50, 32, seed=9)
    first = RandomProjection(dim=8, seed=5).fit(x)
    second = RandomProjection(dim=8, seed=5).fit(other)
    np.testing.assert_array_equal(first.encode(x), second.encode(x))
    assert not np.allclose(RandomProjection(dim=8, seed=6).fit(x).encode(x), first.encode(x))


def test_transpose_decoding_scores_like_the_projected_inner_product() -> None:
    x, queries = unit_vectors(30, 48), unit_vectors(5, 48, seed=2)
    compressor = RandomProjection(dim=12, decoder="transpose").fit(x)
    codes = compressor.encode(x)
    expected = compressor.encode(queries) @ codes.T
    np.testing.assert_allclose(queries @ compressor.decode(codes).T, expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(compressor.score(queries, codes), expected, rtol=1e-5, atol=1e-6)


def test_pinv_decoding_is_the_orthogonal_projection_on_the_row_space() -> None:
    x = unit_vectors(30, 48).astype(np.float64)
    pinv = RandomProjection(dim=12, decoder="pinv").fit(x)
    codes = pinv.encode(x)
    restored = pinv.decode(codes).astype(np.float64)
    np.testing.assert_allclose(pinv.encode(restored), codes, atol=1e-4)  # consistent with the codes
    # Orthogonal projection: ||x||^2 = ||x_hat||^2 + ||x - x_hat||^2.
    np.testing.assert_allclose(np.sum(restored**2, 1) + np.sum((x - restored) ** 2, 1), 1.0, atol=1e-4)
    transpose = RandomProjection(dim=12, decoder="transpose").fit(x)
    transpose_error = np.sum((transpose.decode(codes) - x) ** 2)
    assert np.sum((restored - x) ** 2) < transpose_error


@pytest.mark.parametrize("decoder", ["transpose", "pinv"])
def test_save_load_roundtrip(tmp_path, decoder: str) -> None:
    x = unit_vectors(25, 40)
    compressor = RandomProjection(ratio=0.5, seed=11, decoder=decoder).fit(x)
    compressor.save(tmp_path / "state")
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert (manifest["kind"], manifest["name"]) == ("compressor", "randproj")
    loaded = RandomProjection.load(tmp_path / "state")
    assert loaded.config == compressor.config and loaded.fingerprint == compressor.fingerprint
    codes = compressor.encode(x)
    np.testing.assert_array_equal(loaded.encode(x), codes)
    np.testing.assert_array_equal(loaded.decode(codes), compressor.decode(codes))


def test_load_rejects_a_projection_that_contradicts_the_config(tmp_path) -> None:
    compressor = RandomProjection(dim=4).fit(unit_vectors(5, 16))
    compressor.projection = compressor.projection[:3]
    compressor.save(tmp_path / "state")
    with pytest.raises(embedlab.StateError, match="does not match"):
        RandomProjection.load(tmp_path / "state")


@pytest.mark.parametrize("params", [
    {}, {"dim": 8, "ratio": 0.5}, {"dim": 0}, {"dim": -3}, {"dim": 2.5}, {"ratio": 0},
    {"ratio": 1.5}, {"ratio": "half"}, {"dim": 8, "seed": -1}, {"dim": 8, "decoder": "inverse"},
    {"dim": 8, "bits": 4},
])
def test_bad_parameters_raise_config_error(params: dict) -> None:
    with pytest.raises(embedlab.ConfigError):
        RandomProjection(**params)


def test_bad_inputs_raise_clear_errors() -> None:
    x = unit_vectors(10, 16)
    with pytest.raises(embedlab.NotFittedError, match="fit"):
        RandomProjection(dim=4).encode(x)
    with pytest.raises(embedlab.InvalidInputError, match="exceeds the input dimension"):
        RandomProjection(dim=32).fit(x)
    compressor = RandomProjection(dim=4).fit(x)
    with pytest.raises(embedlab.InvalidInputError, match="dimension"):
        compressor.encode(x[:, :8])
    with pytest.raises(embedlab.InvalidInputError, match="NaN"):
        compressor.encode(np.full((2, 16), np.nan))
    with pytest.raises(embedlab.InvalidInputError, match="dimension"):
        compressor.decode(np.zeros((2, 5), np.float32))
