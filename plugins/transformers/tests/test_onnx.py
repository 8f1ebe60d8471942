"""The ONNX Runtime backend: cached export, same embeddings as torch."""

from __future__ import annotations

import hashlib

import numpy as np
from embedlab_transformers import MiniLM, MiniLMTokens
from embedlab_transformers.model_files import default_model_dir


def test_onnx_equals_torch(minilm, minilm_onnx, documents, queries):
    texts = [*documents, *queries, ""]
    torch_out, onnx_out = minilm.encode_documents(texts), minilm_onnx.encode_documents(texts)
    assert ((torch_out * onnx_out).sum(1)).min() >= 0.9999


def test_onnx_tokens_equal_torch(onnx_cache, documents, queries, opts):
    texts = [documents[2], *queries[:5], ""]
    torch_out = MiniLMTokens(**opts).encode_documents(texts)
    onnx_out = MiniLMTokens(backend="onnx", **opts).encode_documents(texts)
    np.testing.assert_array_equal(torch_out.offsets, onnx_out.offsets)
    assert (torch_out.vectors * onnx_out.vectors).sum(1).min() >= 0.9999


def test_export_is_cached_by_weights_and_max_length(onnx_cache, minilm_onnx, opts):
    digest = hashlib.sha256((default_model_dir() / "model.safetensors").read_bytes()).hexdigest()
    path = minilm_onnx.loaded.backend.path
    assert path == onnx_cache / "onnx" / f"{digest}-len256-r1" / "model.onnx"
    stamp = path.stat().st_mtime_ns
    again = MiniLM(backend="onnx", **opts)
    assert again.loaded.backend.path == path and path.stat().st_mtime_ns == stamp  # reused
    assert [p.name for p in (onnx_cache / "onnx").iterdir()] == [path.parent.name]  # no temp left


def test_int8_backend_stays_close_to_fp32_and_is_cached(onnx_cache, minilm_onnx, documents, queries, opts):
    texts = [*documents[:20], *queries[:20], ""]
    quantized = MiniLM(backend="onnx-int8", **opts)
    fp32, int8 = minilm_onnx.encode_documents(texts), quantized.encode_documents(texts)
    cosine = (fp32 * int8).sum(1)[:-1]
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98  # measured 0.996 / 0.993 on SciFact
    assert not np.array_equal(fp32, int8)  # really another model
    path = quantized.loaded.backend.path
    assert path.name == "model-int8-q1.onnx" and path.parent == minilm_onnx.loaded.backend.path.parent
    assert path.stat().st_size < 0.8 * minilm_onnx.loaded.backend.path.stat().st_size
    stamp = path.stat().st_mtime_ns
    assert MiniLM(backend="onnx-int8", **opts).loaded.backend.path.stat().st_mtime_ns == stamp
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_split_attention_graph_equals_the_export(onnx_cache, minilm_onnx, documents, queries, opts, tmp_path):
    """The rewrite that the ``onnx-int8-qkv`` recipe quantises computes the export's function."""
    import onnx
    from embedlab_transformers.attention_split import split_attention

    split = tmp_path / "split.onnx"
    assert split_attention(minilm_onnx.loaded.backend.path, split) == 6  # one per layer
    ops = [node.op_type for node in onnx.load(str(split)).graph.node]
    assert "Attention" not in ops and ops.count("MultiHeadAttention") == 6
    rewritten = MiniLM(backend="onnx", **opts)
    rewritten.loaded.backend.session = rewritten.loaded.backend.open_session(split)
    texts = [*documents, *queries[:8], ""]
    cosine = (minilm_onnx.encode_documents(texts) * rewritten.encode_documents(texts)).sum(1)
    assert cosine.min() >= 0.99999


def test_int8_qkv_backend_stays_close_to_fp32_and_is_cached_apart(onnx_cache, minilm_onnx, documents, queries,
                                                                  opts):
    texts = [*documents[:20], *queries[:20], ""]
    qkv = MiniLM(backend="onnx-int8-qkv", **opts)
    fp32, int8 = minilm_onnx.encode_documents(texts), qkv.encode_documents(texts)
    cosine = (fp32 * int8).sum(1)[:-1]
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98  # measured 0.995 / 0.992 on SciFact
    path = qkv.loaded.backend.path
    assert path.name == "model-int8-qkv1.onnx" and path.parent == minilm_onnx.loaded.backend.path.parent
    assert not np.array_equal(int8, MiniLM(backend="onnx-int8", **opts).encode_documents(texts))
    stamp = path.stat().st_mtime_ns
    assert MiniLM(backend="onnx-int8-qkv", **opts).loaded.backend.path.stat().st_mtime_ns == stamp
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left


def test_the_cache_key_changes_with_the_int8_recipe(monkeypatch, tmp_path):
    """``onnx-int8`` keeps the key its cached vectors were written under (no recipe in it);
    ``onnx-int8-qkv`` has its recipe in the key, and a changed recipe changes the key."""
    import attrs
    from embedlab_transformers import quantize

    from embedlab.cache import EmbeddingCache

    def key(backend):
        return EmbeddingCache(tmp_path).key(MiniLM(backend=backend, show_progress=False), "documents", "corpus")

    assert MiniLM(backend="onnx-int8").state_fingerprint is None and MiniLM().state_fingerprint is None
    keys = {backend: key(backend) for backend in ("onnx", "onnx-int8", "onnx-int8-qkv", "onnx-int8-qkv-ffn0")}
    assert len(set(keys.values())) == 4
    # what the existing backends' keys (and their cached vectors) depend on is unchanged
    assert quantize.RECIPES["onnx-int8"].fingerprint is None
    assert quantize.RECIPES["onnx-int8-qkv"].fingerprint == "int8 recipe qkv1"
    assert key("onnx-int8-qkv") == EmbeddingCache(tmp_path).key(MiniLM(backend="onnx-int8-qkv", device="auto"),
                                                               "documents", "corpus")  # device: not identity
    assert key("onnx-int8") == keys["onnx-int8"] and key("onnx-int8-qkv") == keys["onnx-int8-qkv"]
    recipes = {**quantize.RECIPES, "onnx-int8-qkv": attrs.evolve(quantize.RECIPES["onnx-int8-qkv"],
                                                                 fingerprint="int8 recipe qkv2")}
    monkeypatch.setattr(quantize, "RECIPES", recipes)
    monkeypatch.setattr("embedlab_transformers.backends.RECIPES", recipes)
    assert key("onnx-int8-qkv") != keys["onnx-int8-qkv"] and key("onnx-int8") == keys["onnx-int8"]


def test_int8_qkv_ffn0_keeps_the_first_ffn_down_projection_in_float32(onnx_cache, minilm_onnx, documents, queries,
                                                                        opts):
    import onnx
    from embedlab_transformers.quantize import matmul_roles

    texts = [*documents[:20], *queries[:20], ""]
    ffn0 = MiniLM(backend="onnx-int8-qkv-ffn0", **opts)
    cosine = (minilm_onnx.encode_documents(texts) * ffn0.encode_documents(texts)).sum(1)[:-1]
    assert cosine.mean() >= 0.99 and cosine.min() >= 0.98  # measured 0.996 / 0.991 on SciFact
    path = ffn0.loaded.backend.path
    assert path.name == "model-int8-qkv1-ffn0.onnx"
    graph = onnx.load(str(path))
    roles = matmul_roles(graph)  # the MatMuls still float32 with a constant weight
    assert [labels for labels in roles.values()] == [("ffn_down", "ffn_down:0")]
    assert sum(node.op_type in ("MatMulInteger", "DynamicQuantizeMatMul") for node in graph.graph.node) == 23
