"""embedlab-transformers: Hugging Face / sentence-transformers encoders (torch or ONNX Runtime)
and the ColBERT-style ``maxsim`` reranker. Heavy libraries load only when a model is used."""

from __future__ import annotations

import embedlab
from embedlab_transformers.encoder import MiniLM, MiniLMTokens, TransformersEncoder
from embedlab_transformers.maxsim import MaxSim

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``transformers``, ``minilm`` and ``minilm-tokens`` encoders and the ``maxsim`` reranker."""
    registry.add("encoder", "transformers", TransformersEncoder)
    registry.add("encoder", "minilm", MiniLM)
    registry.add("encoder", "minilm-tokens", MiniLMTokens)
    registry.add("reranker", "maxsim", MaxSim)


__all__ = ["EMBEDLAB_API_VERSION", "MaxSim", "MiniLM", "MiniLMTokens", "TransformersEncoder",
           "embedlab_register"]
