"""The storage compressor: score == decode-then-dot, persistence, determinism, input errors."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from embedlab_storage import StorageCompressor

import embedlab
from embedlab.persistence import save_state

SPECS = ["float32", "float16", "bfloat16", "float8_e4m3", "float8_e5m2", "int8", "binary",
         "pca:0.5+float8_e4m3", "pca:0.25", "kpca:0.5+int8", "grp:0.25+float16", "srp:0.5+binary",
         "ae:0.5+float8_e4m3", "umap:0.25+bfloat16"]


@pytest.fixture(scope="module")
def fitted(vectors: np.ndarray, fast: dict, fake_umap: list) -> dict[str, StorageCompressor]:
    return {spec: StorageCompressor(spec=spec, **fast).fit(vectors) for spec in SPECS}


@pytest.mark.parametrize("spec", SPECS)
def test_score_equals_decode_then_dot(spec: str, fitted: dict, vectors: np.ndarray,
                                      queries: np.ndarray) -> None:
    compressor = fitted[spec]
    codes = compressor.encode(vectors)
    expected = queries.astype(np.float64) @ compressor.decode(codes).T.astype(np.float64)
    np.testing.assert_allclose(compressor.score(queries, codes), expected, rtol=1e-4, atol=1e-5)
    # Blocks of codes (as an index passes them) score like the whole.
    np.testing.assert_allclose(compressor.score(queries, codes[100:150]), expected[:, 100:150],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("spec", SPECS)
def test_save_load_reproduces_codes_decoding_and_scores(spec: str, fitted: dict, vectors: np.ndarray,
                                                         queries: np.ndarray, tmp_path) -> None:
    compressor = fitted[spec]
    compressor.save(tmp_path / "state")
    manifest = json.loads((tmp_path / "state" / "manifest.json").read_text())
    assert (manifest["kind"], manifest["name"], manifest["config"]["spec"]) == ("compressor", "storage", spec)
    loaded = embedlab.load_component(tmp_path / "state")
    assert isinstance(loaded, StorageCompressor) and loaded.config == compressor.config
    codes = compressor.encode(vectors)
    np.testing.assert_array_equal(loaded.encode(vectors), codes)
    np.testing.assert_array_equal(loaded.decode(codes), compressor.decode(codes))
    np.testing.assert_array_equal(loaded.score(queries, codes), compressor.score(queries, codes))
    assert loaded.bytes_per_vector == compressor.bytes_per_vector


@pytest.mark.parametrize("spec", ["pca:0.5+int8", "grp:0.5+float8_e4m3", "kpca:0.5", "ae:0.25+binary"])
def test_same_seed_same_codes(spec: str, vectors: np.ndarray, fast: dict) -> None:
    first = StorageCompressor(spec=spec, seed=3, **fast).fit(vectors).encode(vectors)
    again = StorageCompressor(spec=spec, seed=3, **fast).fit(vectors).encode(vectors)
    np.testing.assert_array_equal(first, again)


def test_seed_changes_random_projections(vectors: np.ndarray) -> None:
    one = StorageCompressor(spec="srp:0.5", seed=1).fit(vectors).encode(vectors)
    two = StorageCompressor(spec="srp:0.5", seed=2).fit(vectors).encode(vectors)
    assert not np.allclose(one, two)


def test_float64_and_non_contiguous_inputs_give_the_same_codes(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="pca:0.5+int8").fit(vectors)
    codes = compressor.encode(vectors)
    fortran = np.asfortranarray(vectors.astype(np.float64))
    strided = np.repeat(vectors, 2, axis=1)[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(compressor.encode(fortran), codes)
    np.testing.assert_array_equal(compressor.encode(strided), codes)
    refit = StorageCompressor(spec="pca:0.5+int8").fit(fortran)
    np.testing.assert_array_equal(refit.encode(vectors), codes)


def test_nan_in_fit_vectors_names_the_row(vectors: np.ndarray) -> None:
    bad = vectors.copy()
    bad[7, 3] = np.nan
    with pytest.raises(embedlab.InvalidInputError, match="row 7 contains NaN"):
        StorageCompressor(spec="int8").fit(bad)
    compressor = StorageCompressor(spec="int8").fit(vectors)
    with pytest.raises(embedlab.InvalidInputError, match="row 7 contains NaN"):
        compressor.encode(bad)


@pytest.mark.parametrize(("spec", "needed"), [("pca:0.5", 25), ("kpca:0.5+int8", 25),
                                               ("ae:0.5", 25), ("umap:0.5", 26)])
def test_fewer_fit_vectors_than_kept_dimensions(spec: str, needed: int, vectors: np.ndarray,
                                               fake_umap: list) -> None:
    with pytest.raises(embedlab.InvalidInputError,
                       match=f"keeps 24 of 48 dimensions and needs at least {needed} fit vectors, got 10"):
        StorageCompressor(spec=spec).fit(vectors[:10])


def test_random_projections_fit_on_any_number_of_vectors(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="grp:0.5").fit(vectors[:2])
    assert compressor.encode(vectors).shape == (400, 24)


def test_use_before_fit_raises_not_fitted(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="int8")
    for call in (lambda: compressor.encode(vectors), lambda: compressor.bytes_per_vector,
                 lambda: compressor.save("unused")):
        with pytest.raises(embedlab.NotFittedError, match="call fit"):
            call()


def test_load_rejects_another_component(tmp_path) -> None:
    class Other(embedlab.Component):
        kind, name = "compressor", "other"

    save_state(tmp_path / "other", Other())
    with pytest.raises(embedlab.StateError, match="expected name 'storage'"):
        StorageCompressor.load(tmp_path / "other")


def test_load_rejects_another_spec(vectors: np.ndarray, tmp_path) -> None:
    StorageCompressor(spec="pca:0.5+float16").fit(vectors).save(tmp_path / "state")
    with pytest.raises(embedlab.StateError, match="saved by storage spec 'pca:0.5\\+float16', "
                                                  "expected 'pca:0.5\\+int8'"):
        StorageCompressor.load(tmp_path / "state", spec="PCA:0.50+int8")
    assert StorageCompressor.load(tmp_path / "state", spec="pca:0.5+float16").config.spec == "pca:0.5+float16"


def test_load_rejects_arrays_that_do_not_fit_the_spec(vectors: np.ndarray, tmp_path) -> None:
    StorageCompressor(spec="int8").fit(vectors).save(tmp_path / "state")
    manifest_path = tmp_path / "state" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["spec"] = "float16"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(embedlab.StateError, match="do not match storage spec 'float16'"):
        StorageCompressor.load(tmp_path / "state")
    manifest["config"]["spec"] = "pca:0.5+int8"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(embedlab.StateError, match="do not match"):
        StorageCompressor.load(tmp_path / "state")


def test_load_rejects_arrays_of_the_wrong_shape(vectors: np.ndarray, tmp_path) -> None:
    compressor = StorageCompressor(spec="pca:0.5+int8").fit(vectors)
    compressor._fitted.reducer.decoder = compressor._fitted.reducer.decoder[:, :40]
    compressor.save(tmp_path / "state")
    with pytest.raises(embedlab.StateError, match=r"decoder has shape \(24, 40\), expected \(24, 48\)"):
        StorageCompressor.load(tmp_path / "state")


def test_interrupted_autoencoder_fit_leaves_the_compressor_unchanged(vectors: np.ndarray, fast: dict,
                                                                     monkeypatch) -> None:
    import torch

    compressor = StorageCompressor(spec="ae:0.5+float16", **fast).fit(vectors)
    codes = compressor.encode(vectors)
    original_step, calls = torch.optim.Adam.step, []

    def step(self, *args, **kwargs):  # Ctrl-C arrives during the third optimiser step
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    with pytest.raises(KeyboardInterrupt):
        compressor.fit(vectors[::-1])
    np.testing.assert_array_equal(compressor.encode(vectors), codes)
    fresh = StorageCompressor(spec="ae:0.5", **fast)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(vectors)
    with pytest.raises(embedlab.NotFittedError):
        fresh.encode(vectors)


@pytest.mark.parametrize(("spec", "module", "extra"), [("umap:0.25", "umap", "umap"),
                                                        ("ae:0.5", "torch", "autoencoder")])
def test_missing_optional_dependency_names_the_extra(spec: str, module: str, extra: str,
                                                     vectors: np.ndarray, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(embedlab.ConfigError, match=rf"pip install 'embedlab-storage\[{extra}\]'"):
        StorageCompressor(spec=spec).fit(vectors)


def test_registered_and_satisfies_the_protocols(vectors: np.ndarray) -> None:
    compressor = embedlab.create("compressor", "storage", spec="pca:0.5+float8_e4m3")
    compressor.fit(vectors)
    assert isinstance(compressor, embedlab.Compressor) and isinstance(compressor, embedlab.CodeScorer)
    assert embedlab.registry().spec("compressor", "storage").distribution == "embedlab-storage"


@pytest.mark.parametrize("spec", ["int8", "pca:0.5+float8_e4m3", "ae:0.5+bfloat16"])
def test_exact_index_stores_codes_searches_with_score_and_persists(spec: str, vectors: np.ndarray,
                                                                   queries: np.ndarray, fast: dict,
                                                                   tmp_path) -> None:
    from embedlab.index import ExactIndex

    compressor = StorageCompressor(spec=spec, **fast).fit(vectors)
    index = ExactIndex(block_size=128)
    index.use_compressor(compressor)
    index.build(vectors)
    assert index.memory_bytes == compressor.bytes_per_vector * len(vectors)
    result = index.search(queries, k=10)
    expected = compressor.score(queries, compressor.encode(vectors))
    np.testing.assert_allclose(result.scores, -np.sort(-expected, axis=1)[:, :10], rtol=1e-5, atol=1e-6)
    index.save(tmp_path / "index")
    reloaded = ExactIndex.load(tmp_path / "index").search(queries, k=10)
    np.testing.assert_array_equal(reloaded.indices, result.indices)
