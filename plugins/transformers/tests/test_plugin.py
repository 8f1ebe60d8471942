"""The plugin is found through its entry point and builds the registered components."""

from __future__ import annotations

from embedlab_transformers import MaxSim, MiniLM, MiniLMTokens, TransformersEncoder

import embedlab
from embedlab.embeddings import EmbeddingKind


def test_entry_point_registers_everything():
    host = embedlab.plugin_host(reload=True)
    info = next(p for p in host.plugins if p.name == "transformers")
    assert info.status == "loaded" and info.distribution == "embedlab-transformers"
    registry = embedlab.registry()
    assert {"transformers", "minilm", "minilm-tokens"} <= set(registry.names("encoder"))
    assert "maxsim" in registry.names("reranker")
    assert registry.spec("encoder", "minilm").factory is MiniLM
    assert registry.spec("encoder", "transformers").factory is TransformersEncoder
    assert registry.spec("encoder", "minilm-tokens").factory is MiniLMTokens
    assert registry.spec("reranker", "maxsim").factory is MaxSim


def test_presets_are_configured():
    dense = embedlab.create("encoder", "minilm")
    assert isinstance(dense, MiniLM) and isinstance(dense, embedlab.Encoder)
    assert (dense.config.pooling, dense.config.normalize, dense.config.max_length) == ("mean", True, 256)
    assert dense.output_kind is EmbeddingKind.DENSE
    tokens = embedlab.create("encoder", "minilm-tokens", batch_size=8)
    assert tokens.output_kind is EmbeddingKind.MULTI_VECTOR and tokens.config.batch_size == 8
    assert embedlab.describe(tokens)["name"] == "minilm-tokens"
    assert isinstance(embedlab.create("reranker", "maxsim", k=10), embedlab.Reranker)
