"""An embedlab dense encoder as MTEB v2's ``EncoderProtocol``: MTEB batches the texts, runs its own
search and any task type that takes embeddings (retrieval, STS, classification, clustering...)."""

from __future__ import annotations

from typing import Any

import mteb
import numpy as np
from mteb.models.abs_encoder import AbsEncoder, ScoringFunction
from mteb.types import PromptType

import embedlab
from embedlab import EmbeddingKind, as_dense
from embedlab.errors import ConfigError
from embedlab_mteb.adapter import _BASE_META


class MTEBEncoder(AbsEncoder):
    """``mteb`` ``EncoderProtocol`` over an embedlab encoder (object, name or ``{"name": ..., **params}``)
    whose output is dense. Queries (``prompt_type`` query) go through ``encode_queries``, everything else
    through ``encode_documents``; similarity is the inner product, the score embedlab's exact index uses
    (cosine for normalised encoders such as MiniLM).
    """

    def __init__(self, encoder: Any, name: str | None = None, revision: str | None = None, **_: Any) -> None:
        if isinstance(encoder, str):
            encoder = embedlab.create("encoder", encoder)
        elif isinstance(encoder, dict):
            params = dict(encoder)
            if "name" not in params:
                raise ConfigError(f"MTEBEncoder: an encoder given as a dict needs a 'name', got {sorted(params)}")
            encoder = embedlab.create("encoder", params.pop("name"), **params)
        if not all(hasattr(encoder, m) for m in ("encode_queries", "encode_documents", "output_kind")):
            raise ConfigError(f"MTEBEncoder wraps an embedlab encoder, got {type(encoder).__name__}")
        if encoder.output_kind is not EmbeddingKind.DENSE:
            raise ConfigError(f"MTEBEncoder needs a dense encoder; {encoder.name!r} gives "
                              f"{encoder.output_kind.value} embeddings (use MTEBSearch with a pipeline instead)")
        self.encoder = encoder
        self.mteb_model_meta = mteb.get_model_meta(_BASE_META).model_copy(
            update={"name": name or f"embedlab/{encoder.name}", "loader": None, "revision": revision,
                    "similarity_fn_name": ScoringFunction.DOT_PRODUCT})

    def encode(self, inputs: Any, *, task_metadata: Any = None, hf_split: str = "", hf_subset: str = "",
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:
        texts = [str(text) for batch in inputs for text in batch["text"]]
        encode = self.encoder.encode_queries if prompt_type == PromptType.query else self.encoder.encode_documents
        return as_dense(encode(texts), name=f"{self.encoder.name} embeddings", allow_empty=True)
