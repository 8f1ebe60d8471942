"""EmbedFilter: the bands of the paper's rules, the SVD of MiniLM's real tied word embeddings,
orthonormal projections, full dimension = identity, the controls, scoring, persistence, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_embedfilter import EmbedFilter
from embedlab_embedfilter.subspace import band_rows, right_singular_vectors, unembedding_matrix
from embedlab_transformers.model_files import default_model_dir

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((200, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_bands_follow_the_papers_rules():
    assert band_rows(8, 4, "edge").tolist() == [2, 3, 4, 5]              # drop (d - k) / 2 at each end
    assert band_rows(8, 4, "edge", offset=1).tolist() == [1, 2, 3, 4]   # Mistral-style fixed offset
    assert band_rows(8, 4, "tail").tolist() == [0, 1, 2, 3]
    assert band_rows(8, 4, "head").tolist() == [4, 5, 6, 7]
    assert band_rows(8, 3, "mid").tolist() == [0, 6, 7]
    rand = band_rows(8, 4, "rand", seed=3)
    assert len(set(rand.tolist())) == 4 and rand.tolist() == band_rows(8, 4, "rand", seed=3).tolist()
    with pytest.raises(ConfigError, match="offset"):
        band_rows(8, 4, "edge", offset=5)


def test_minilm_unembedding_svd_and_the_edge_filter():
    matrix = unembedding_matrix(default_model_dir())
    assert matrix.shape == (30522, 384)                                  # MiniLM's tied word embeddings
    vh = right_singular_vectors(matrix)
    singular = np.linalg.norm(matrix @ vh.T, axis=0)
    assert np.all(np.diff(singular) <= 1e-3)                             # rows by descending singular value
    compressor = EmbedFilter(dims=192).fit(np.zeros((1, 384), np.float32))
    np.testing.assert_allclose(compressor.projection, vh[96:288], atol=1e-6)
    np.testing.assert_allclose(compressor.projection @ compressor.projection.T, np.eye(192), atol=1e-5)


@pytest.mark.parametrize("params", [{"basis": "unembedding"}, {"basis": "pca"}, {"basis": "random"},
                                    {"band": "rand"}, {"band": "tail"}])
def test_full_dimension_is_the_identity(vectors, params):
    compressor = EmbedFilter(dims=384, **params).fit(vectors)
    np.testing.assert_allclose(compressor.decode(compressor.encode(vectors)), vectors, atol=1e-5)
    np.testing.assert_allclose(compressor.score(vectors[:3], compressor.encode(vectors)), vectors[:3] @ vectors.T,
                               atol=1e-5)


def test_projection_scoring_and_the_controls(vectors):
    pca = EmbedFilter(dims=8, basis="pca").fit(vectors)
    centred = vectors - vectors.mean(0)
    captured = np.linalg.norm(centred @ pca.projection.T) ** 2
    for seed in range(3):                                                # PCA keeps more variance than random
        other = EmbedFilter(dims=8, basis="random", seed=seed).fit(vectors)
        assert captured > np.linalg.norm(centred @ other.projection.T) ** 2
        np.testing.assert_allclose(other.projection @ other.projection.T, np.eye(8), atol=1e-5)
    assert not np.allclose(EmbedFilter(dims=8, basis="random", seed=1).fit(vectors).projection,
                           EmbedFilter(dims=8, basis="random", seed=2).fit(vectors).projection)
    codes = pca.encode(vectors)
    assert codes.shape == (200, 8) and codes.dtype == np.float32 and pca.bytes_per_vector == 32.0
    np.testing.assert_allclose(np.linalg.norm(codes, axis=1), 1, atol=1e-5)   # cosine in the subspace
    np.testing.assert_allclose(pca.score(vectors[:5], codes), vectors[:5] @ pca.decode(codes).T, atol=1e-5)


def test_in_a_pipeline_saved_and_loaded(vectors, tmp_path):
    compressor = embedlab.create("compressor", "embedfilter", dims=16)
    compressor.fit(vectors)
    compressor.save(tmp_path / "filter")
    loaded = embedlab.load_component(tmp_path / "filter")
    np.testing.assert_array_equal(loaded.encode(vectors), compressor.encode(vectors))
    np.save(tmp_path / "filter" / "projection.npy", np.zeros((3, 384), np.float32))
    with pytest.raises(StateError):
        embedlab.load_component(tmp_path / "filter")


def test_bad_input_is_refused(vectors):
    with pytest.raises(NotFittedError):
        EmbedFilter().encode(vectors)
    with pytest.raises(ConfigError, match="band"):
        EmbedFilter(band="middle")
    with pytest.raises(ConfigError, match="dims"):
        EmbedFilter(dims=0)
    with pytest.raises(InvalidInputError, match="unembedding"):
        EmbedFilter(dims=8).fit(vectors[:, :100])                    # not MiniLM's dimension
    with pytest.raises(InvalidInputError, match="exceeds"):
        EmbedFilter(dims=400, basis="random").fit(vectors)
    compressor = EmbedFilter(dims=8).fit(vectors)
    bad = vectors[:2].copy()
    bad[0, 0] = np.nan
    with pytest.raises(InvalidInputError):
        compressor.encode(bad)
    with pytest.raises(InvalidInputError):
        compressor.encode(vectors[:, :10])


def test_embedlab_run_from_toml_gives_what_the_python_api_gives(tmp_path):
    """MiniLM + the EmbedFilter compressor + exact search from an experiment file: the same
    configuration (fingerprints) and nDCG@10 as the pipeline built in Python."""
    from embedlab import Corpus, Dataset, Queries
    from embedlab.testing import api_aggregates, run_cli_experiment

    texts = ["Return the absolute value of a number.", "Open a file and read its lines.",
             "Sort a list in place.", "Send an HTTP request and read the response."]
    dataset = Dataset("filter-toml", Corpus(["d0", "d1", "d2", "d3"], texts), Queries(["q0", "q1"], ["read a file",
                      "sort items"]), {"test": {"q0": {"d1": 1}, "q1": {"d2": 1}}})
    encoder = {"name": "minilm", "num_threads": 1, "show_progress": False}
    compressor = {"name": "embedfilter", "dims": 192, "band": "edge"}
    found = run_cli_experiment(tmp_path, dataset, [{"name": "filter", "encoder": encoder, "compressor": compressor,
                                                    "index": {"name": "exact"}}])["filter"]
    pipeline = embedlab.Pipeline(encoder=embedlab.create("encoder", **encoder), index=embedlab.create("index", "exact"),
                                 compressor=embedlab.create("compressor", **compressor))
    expected = api_aggregates(pipeline, dataset)
    assert found["fingerprints"] == pipeline.fingerprints() and "compressor" in found["fingerprints"]
    assert found["aggregates"]["nDCG@10"] == pytest.approx(expected["nDCG@10"], abs=1e-12)
