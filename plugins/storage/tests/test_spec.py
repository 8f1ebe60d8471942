"""Spec strings and parameters: parsing, canonical form, clear errors."""

from __future__ import annotations

import pytest
from embedlab_storage import QUANTISERS, REDUCERS, StorageCompressor, parse_spec
from embedlab_storage.spec import ReducerSpec, StorageSpec

import embedlab


@pytest.mark.parametrize(("text", "expected", "canonical"), [
    ("float8_e4m3", StorageSpec("float8_e4m3"), "float8_e4m3"),
    (" INT8 ", StorageSpec("int8"), "int8"),
    ("pca:0.50+float8_e4m3", StorageSpec("float8_e4m3", ReducerSpec("pca", 0.5)), "pca:0.5+float8_e4m3"),
    ("kpca:0.5+int8", StorageSpec("int8", ReducerSpec("kpca", 0.5)), "kpca:0.5+int8"),
    ("grp:0.25+float16", StorageSpec("float16", ReducerSpec("grp", 0.25)), "grp:0.25+float16"),
    ("srp:0.25", StorageSpec("float32", ReducerSpec("srp", 0.25)), "srp:0.25"),
    ("pca:1+float32", StorageSpec("float32", ReducerSpec("pca", 1.0)), "pca:1"),
    ("umap:0.25", StorageSpec("float32", ReducerSpec("umap", 0.25)), "umap:0.25"),
    ("ae:0.5+binary", StorageSpec("binary", ReducerSpec("ae", 0.5)), "ae:0.5+binary"),
])
def test_parse_and_canonical_form(text: str, expected: StorageSpec, canonical: str) -> None:
    assert parse_spec(text) == expected
    assert str(parse_spec(text)) == canonical
    assert StorageCompressor(spec=text).config.spec == canonical


def test_every_reducer_chains_with_every_quantiser() -> None:
    for reducer in REDUCERS:
        for quantiser in QUANTISERS:
            spec = parse_spec(f"{reducer}:0.5+{quantiser}")
            assert (spec.reducer.method, spec.quantiser) == (reducer, quantiser)


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"),
    ("float9", "valid quantisers: float32, float16, bfloat16, float8_e4m3, float8_e5m2, int8, binary"),
    ("pcb:0.5", "valid reducers: pca, kpca, grp, srp, ae, umap"),
    ("pca", "needs the fraction"),
    ("pca:0", r"in \(0, 1\]"),
    ("pca:1.5", r"in \(0, 1\]"),
    ("pca:nan", r"in \(0, 1\]"),
    ("pca:half", "must be a number"),
    ("int8:0.5", "is a quantiser"),
    ("float16+pca:0.5", "reducer comes first"),
    ("pca:0.5+int8+binary", "at most one reducer and one quantiser"),
    ("pca:0.5+", "at most one reducer and one quantiser"),
    ("pca:0.5+flaot16", "Did you mean 'float16'"),
])
def test_bad_specs_raise_config_error_naming_the_valid_choices(text: str, message: str) -> None:
    with pytest.raises(embedlab.ConfigError, match=message):
        parse_spec(text)
    with pytest.raises(embedlab.ConfigError, match=message):
        StorageCompressor(spec=text)


def test_bad_spec_through_the_registry() -> None:
    with pytest.raises(embedlab.ConfigError, match="valid quantisers"):
        embedlab.create("compressor", "storage", spec="fp8")
    with pytest.raises(embedlab.ConfigError, match="must be a string"):
        parse_spec(8)


@pytest.mark.parametrize("params", [
    {"seed": -1}, {"int8_range": "absmax"}, {"int8_percentile": 30}, {"int8_percentile": 101},
    {"binary_threshold": "mean"}, {"binary_scoring": "cosine"}, {"kpca_kernel": "sigmoid"},
    {"kpca_gamma": 0}, {"reference_size": 1}, {"umap_neighbors": 1}, {"ae_hidden": [0]},
    {"ae_hidden": [64, "a"]}, {"ae_epochs": 0}, {"ae_lr": -1.0}, {"ae_batch_size": 0}, {"bits": 4},
])
def test_bad_parameters_raise_config_error(params: dict) -> None:
    with pytest.raises(embedlab.ConfigError):
        StorageCompressor(spec="pca:0.5", **params)


def test_toml_style_parameters_are_accepted() -> None:
    compressor = embedlab.create("compressor", "storage", spec="ae:0.5+float8_e4m3", ae_hidden=[64, 32])
    assert compressor.config.ae_hidden == (64, 32)
    assert StorageCompressor().config.spec == "float8_e4m3"
