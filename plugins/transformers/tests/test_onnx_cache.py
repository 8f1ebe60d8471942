"""The ONNX export cache: checksummed, rebuilt (with a warning) when a file is damaged. The exporter
is replaced by one writing a small file, so these tests do not run torch's exporter."""

from __future__ import annotations

import json

import pytest
from embedlab_transformers import onnx_export


@pytest.fixture()
def exports(tmp_path, monkeypatch):
    """Calls of the (fake) exporter; EMBEDLAB_CACHE_DIR is a fresh directory."""
    monkeypatch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("EMBEDLAB_FSYNC", "0")
    calls = []

    def export(model, names, max_length, path, *, external_data=False):
        calls.append(path)
        path.write_bytes(b"onnx-graph" * 1000)
        return {"Attention": 6}

    monkeypatch.setattr(onnx_export, "export_onnx", export)
    monkeypatch.setattr(onnx_export, "load_torch_model", lambda model_dir: object())
    monkeypatch.setattr(onnx_export, "model_input_names", lambda model, tokenizer: ["input_ids"])
    monkeypatch.setattr(onnx_export, "weights_sha256", lambda model_dir: "w" * 64)
    monkeypatch.setattr(onnx_export, "weight_files", lambda model_dir: [])
    return calls


def test_the_export_records_checksums_and_is_reused(exports, tmp_path):
    path = onnx_export.ensure_onnx_model(tmp_path / "model", None, 128)
    assert onnx_export.ensure_onnx_model(tmp_path / "model", None, 128) == path and len(exports) == 1
    meta = json.loads((path.parent / "export.json").read_text())
    assert meta["files"]["model.onnx"]["bytes"] == 10_000 and len(meta["files"]["model.onnx"]["sha256"]) == 64
    assert [p.name for p in path.parent.parent.iterdir()] == [path.parent.name]


@pytest.mark.parametrize("damage", ["truncated", "edited", "no checksums", "no metadata", "file in place"])
def test_a_damaged_export_is_rebuilt_with_a_warning(exports, tmp_path, damage):
    """Before: a truncated model.onnx broke every later run (no checksum)."""
    path = onnx_export.ensure_onnx_model(tmp_path / "model", None, 128)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "edited":
        path.write_bytes(b"x" * 10_000)
    elif damage == "no checksums":
        meta = json.loads((path.parent / "export.json").read_text())
        (path.parent / "export.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "files"}))
    elif damage == "no metadata":
        (path.parent / "export.json").unlink()
    else:
        import shutil

        shutil.rmtree(path.parent)
        path.parent.write_text("not a directory")
    with pytest.warns(UserWarning, match="ONNX export .* is unusable .*exporting it again"):
        again = onnx_export.ensure_onnx_model(tmp_path / "model", None, 128)
    assert again == path and len(exports) == 2 and onnx_export.export_problem(path.parent) is None


@pytest.fixture()
def quantizations(tmp_path, monkeypatch):
    """Calls of the (fake) quantiser, which writes a small file; returns (calls, fp32 model path)."""
    from embedlab_transformers import quantize

    monkeypatch.setenv("EMBEDLAB_FSYNC", "0")
    calls = []

    def fake(source, destination, recipe):
        calls.append(destination)
        destination.write_bytes(b"int8-graph" * 500)

    monkeypatch.setattr(quantize, "quantize", fake)
    fp32 = tmp_path / "export" / "model.onnx"
    fp32.parent.mkdir()
    fp32.write_bytes(b"onnx-graph" * 1000)
    return calls, fp32


def test_the_int8_model_records_its_checksum_and_is_reused(quantizations):
    from embedlab_transformers import quantize

    calls, fp32 = quantizations
    path = quantize.ensure_quantized_model(fp32)
    assert quantize.ensure_quantized_model(fp32) == path and len(calls) == 1
    record = json.loads(quantize.record_path(path).read_text())
    assert record["bytes"] == 5_000 and len(record["sha256"]) == 64
    assert sorted(p.name for p in fp32.parent.iterdir()) == ["model-int8-q1.onnx", "model-int8-q1.onnx.json",
                                                             "model.onnx"]


@pytest.mark.parametrize("damage", ["truncated", "edited", "no record", "record garbage", "directory in place"])
def test_a_damaged_int8_model_is_quantised_again_with_a_warning(quantizations, damage):
    """Before: the int8 file had no checksum, so a truncated one broke every onnx-int8 run; a
    process killed between the model's rename and its record's leaves "no record"."""

    from embedlab_transformers import quantize

    calls, fp32 = quantizations
    path = quantize.ensure_quantized_model(fp32)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "edited":
        path.write_bytes(b"y" * 5_000)
    elif damage == "no record":
        quantize.record_path(path).unlink()
    elif damage == "record garbage":
        quantize.record_path(path).write_text("[[[")
    else:
        path.unlink()
        path.mkdir()
        (path / "x").write_text("not a model")
    with pytest.warns(UserWarning, match="int8 ONNX model .* is unusable .*quantising it again"):
        again = quantize.ensure_quantized_model(fp32)
    assert again == path and len(calls) == 2 and quantize.quantized_problem(path) is None
    assert not [p for p in fp32.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_each_int8_recipe_has_its_own_cached_file(quantizations):
    from embedlab_transformers import quantize

    calls, fp32 = quantizations
    paths = {name: quantize.ensure_quantized_model(fp32, recipe) for name, recipe in quantize.RECIPES.items()}
    assert [p.name for p in paths.values()] == ["model-int8-q1.onnx", "model-int8-qkv1.onnx",
                                                "model-int8-qkv1-ffn0.onnx"] and len(calls) == 3
    assert [quantize.ensure_quantized_model(fp32, r) for r in quantize.RECIPES.values()] == list(paths.values())
    assert len(calls) == 3
    assert json.loads(quantize.record_path(paths["onnx-int8-qkv"]).read_text())["recipe"] == "qkv1"
