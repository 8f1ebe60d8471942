"""The ``jpq`` compressor: codes, scoring, FAISS reference, bad input and persistence."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
from embedlab_jpq import JPQCompressor

import embedlab
from embedlab import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.index import ExactIndex
from embedlab.persistence import save_state


def test_registered_as_a_compressor_and_code_scorer(trained: JPQCompressor) -> None:
    assert "jpq" in embedlab.registry().names("compressor")
    created = embedlab.create("compressor", "jpq", m=8)
    assert isinstance(created, JPQCompressor) and created.config.m == 8
    assert isinstance(trained, embedlab.Compressor) and isinstance(trained, embedlab.CodeScorer)


def test_codes_bytes_and_score_equals_scoring_the_decoded_codes(trained: JPQCompressor, docs: np.ndarray,
                                                                fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    codes = trained.encode(docs)
    assert codes.dtype == np.uint8 and codes.shape == (400, 8) and trained.bytes_per_vector == 8.0
    queries = docs[:7] + 0.01
    adapter = trained.query_adapter
    assert adapter is not None and not np.allclose(adapter, np.eye(32), atol=1e-3)  # a real query map
    np.testing.assert_allclose(trained.score(queries, codes), queries @ trained.decode(codes).T, rtol=1e-4, atol=1e-5)
    rotated = JPQCompressor(**{**fast, "opq": True}).fit(docs)
    np.testing.assert_allclose(rotated.score(queries, codes), queries @ rotated.decode(codes).T, rtol=1e-4, atol=1e-5)
    wide = JPQCompressor(**{**fast, "ksub": 300, "m": 2}).fit(make_vectors(300))
    assert wide.encode(docs[:3]).dtype == np.uint16 and wide.bytes_per_vector == 4.0
    assert trained.encode(np.zeros((0, 32))).shape == (0, 8)


def test_exact_index_searches_the_codes(trained: JPQCompressor, docs: np.ndarray, make_vectors) -> None:  # type: ignore[no-untyped-def]
    index = ExactIndex(metric="ip")
    index.use_compressor(trained)
    index.build(docs)
    queries = make_vectors(5, seed=4)
    result = index.search(queries, k=10)
    scores = trained.score(queries, trained.encode(docs))
    np.testing.assert_allclose(result.scores, -np.sort(-scores, axis=1)[:, :10], rtol=1e-5)


def test_plain_pq_matches_faiss_pq_quality(docs: np.ndarray, fast: dict) -> None:
    ours = JPQCompressor(**{**fast, "m": 8, "kmeans_iterations": 25}).fit(docs)
    ours_error = np.mean(np.sum((ours.decode(ours.encode(docs)) - docs) ** 2, axis=1))
    pq = faiss.ProductQuantizer(32, 8, 4)  # 16 centroids per subspace
    pq.train(docs)
    faiss_error = np.mean(np.sum((pq.decode(pq.compute_codes(docs)) - docs) ** 2, axis=1))
    assert ours_error < 1.1 * faiss_error


def test_opq_initialisation_is_faiss_opq_pq(docs: np.ndarray, fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    """opq=True starts from FAISS OPQ8,PQ8x5 trained with the same iterations and seed: same search."""
    ours = JPQCompressor(**{**fast, "opq": True, "seed": 7}).fit(docs)
    index = faiss.index_factory(32, "OPQ8,PQ8x5", faiss.METRIC_INNER_PRODUCT)
    pq = faiss.downcast_index(index.index).pq
    pq.cp.niter, pq.cp.seed = fast["kmeans_iterations"], 7
    index.train(docs)
    index.add(docs)
    queries = make_vectors(20, seed=5)
    faiss_scores, faiss_found = index.search(queries, 10)
    scores = ours.score(queries, ours.encode(docs))
    np.testing.assert_allclose(np.take_along_axis(scores, faiss_found, 1), faiss_scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(-np.sort(-scores, axis=1)[:, :10], faiss_scores, rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="ksub a power of two.*got 48"):
        JPQCompressor(**{**fast, "opq": True, "ksub": 48}).fit(docs)


def test_opq_rotation_is_orthonormal_and_lowers_the_error(fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    x = make_vectors(600, d=32, seed=2) @ np.random.default_rng(0).standard_normal((32, 32)).astype(np.float32)
    plain = JPQCompressor(**{**fast, "kmeans_iterations": 25}).fit(x)
    rotated = JPQCompressor(**{**fast, "kmeans_iterations": 25, "opq": True}).fit(x)
    rotation = rotated._state().rotation
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(32), atol=1e-4)
    again = JPQCompressor(**{**fast, "kmeans_iterations": 25, "opq": True}).fit(x)
    np.testing.assert_array_equal(again.encode(x), rotated.encode(x))  # deterministic with OPQ too

    def error(c: JPQCompressor) -> float:
        return float(np.mean(np.sum((c.decode(c.encode(x)) - x) ** 2, axis=1)))

    assert error(rotated) < error(plain)


def test_too_few_vectors_give_the_number_needed(fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match="at least 64 training vectors.*ksub=64.*got 40"):
        JPQCompressor(**{**fast, "ksub": 64}).fit(make_vectors(40))
    with pytest.raises(InvalidInputError, match="at least 32 training vectors.*d=32.*got 20"):
        JPQCompressor(**{**fast, "ksub": 16}).fit(make_vectors(20))  # 16 centroids but 32 dimensions


def test_dimension_not_divisible_by_m(fast: dict, make_vectors) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="not divisible by m=5"):
        JPQCompressor(**{**fast, "m": 5}).fit(make_vectors(100))


def test_float64_and_non_contiguous_input_are_accepted(docs: np.ndarray, fast: dict) -> None:
    reference = JPQCompressor(**fast).fit(docs)
    codes = reference.encode(docs)
    strided = np.zeros((400, 64), np.float32)
    strided[:, ::2] = docs
    for variant in (docs.astype(np.float64), strided[:, ::2], np.asfortranarray(docs)):
        other = JPQCompressor(**fast).fit(variant)
        np.testing.assert_array_equal(other.encode(variant), codes)
        np.testing.assert_array_equal(reference.encode(variant), codes)


def test_nan_rows_are_rejected_with_their_index(docs: np.ndarray, fast: dict) -> None:
    bad = docs.copy()
    bad[123, 5] = np.nan
    with pytest.raises(InvalidInputError, match="row 123"):
        JPQCompressor(**fast).fit(bad)


def test_config_validation_and_not_fitted(fast: dict) -> None:
    for params in ({"m": 0}, {"ksub": 1}, {"lr": 0.0}, {"validation_fraction": 1.0}, {"opq": "yes"},
                   {"temperature": -1.0}, {"query_lr": 0}, {"query_adapter": 1}, {"holdout": "docs"},
                   {"unknown": 1}):
        with pytest.raises(ConfigError):
            JPQCompressor(**params)
    with pytest.raises(NotFittedError, match="call fit"):
        JPQCompressor(**fast).encode(np.zeros((1, 32)))


def test_codes_of_another_shape_or_dtype_are_rejected(trained: JPQCompressor, docs: np.ndarray) -> None:
    for codes in (np.zeros((3, 4), np.uint8), np.zeros((3, 8), np.int64), np.zeros((3, 8), np.float32)):
        with pytest.raises(InvalidInputError, match="another compressor"):
            trained.score(docs[:2], codes)
        with pytest.raises(InvalidInputError, match="another compressor"):
            trained.decode(codes)


def test_save_and_load_reproduce_codes_and_scores(trained: JPQCompressor, docs: np.ndarray, fast: dict,
                                                  tmp_path) -> None:  # type: ignore[no-untyped-def]
    trained.save(tmp_path / "jpq")
    loaded = JPQCompressor.load(tmp_path / "jpq")
    assert loaded.config == trained.config and loaded.training_record == trained.training_record
    codes = trained.encode(docs)
    np.testing.assert_array_equal(loaded.encode(docs), codes)
    np.testing.assert_array_equal(loaded.score(docs[:5], codes), trained.score(docs[:5], codes))
    rotated = JPQCompressor(**{**fast, "opq": True}).fit(docs)
    rotated.save(tmp_path / "opq")
    np.testing.assert_array_equal(JPQCompressor.load(tmp_path / "opq").encode(docs), rotated.encode(docs))


def test_loading_another_components_state_is_rejected(trained: JPQCompressor, tmp_path) -> None:  # type: ignore[no-untyped-def]
    class Other(embedlab.Component):
        kind, name = "compressor", "other-pq"

    save_state(tmp_path / "other", Other(), arrays={"centroids": trained.codebooks.centroids})
    with pytest.raises(StateError, match="expected name 'jpq'"):
        JPQCompressor.load(tmp_path / "other")
    trained.save(tmp_path / "jpq")
    manifest = json.loads((tmp_path / "jpq" / "manifest.json").read_text())
    manifest["config"]["m"] = 4
    (tmp_path / "jpq" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StateError, match=r"assign_centroids\.npy: shape \(8, 32, 4\), expected \(4, 32, 8\)"):
        JPQCompressor.load(tmp_path / "jpq")

    trained.save(tmp_path / "adapter")
    manifest = json.loads((tmp_path / "adapter" / "manifest.json").read_text())
    manifest["config"]["query_adapter"] = False
    (tmp_path / "adapter" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StateError, match="query_adapter.npy is present but query_adapter=False"):
        JPQCompressor.load(tmp_path / "adapter")
