"""The text side: any installed dense text encoder (MiniLM by default), frozen, its sentence
vectors of the distinct texts cached on disk (the core's embedding cache), so instructions and
captions are encoded once across runs."""

from __future__ import annotations

from functools import cached_property
from typing import Any, Sequence

import numpy as np

from embedlab import embeddings as emb
from embedlab.cache import EmbeddingCache, texts_hash
from embedlab.errors import ConfigError
from embedlab.media import InputKind, accepted_inputs


class TextSide:
    """Sentence vectors of texts from a frozen text encoder component (created on first use)."""

    def __init__(self, spec: str | dict[str, Any], *, cache: bool = True) -> None:
        self.spec = spec
        self.cache = EmbeddingCache() if cache else None

    @cached_property
    def encoder(self) -> Any:
        from embedlab_train.components import create

        encoder = create("encoder", self.spec)
        if encoder.output_kind != emb.EmbeddingKind.DENSE or InputKind.TEXT not in accepted_inputs(encoder,
                                                                                                 "documents"):
            raise ConfigError(f"cir: text_encoder {self.spec!r} must be a dense text encoder")
        return encoder

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dim)`` float32 vectors; each distinct text is encoded once."""
        distinct = sorted(set(texts))
        if self.cache is None:
            encoded = emb.as_dense(self.encoder.encode_documents(distinct), name="cir text vectors")
        else:
            key = self.cache.key(self.encoder, "documents", texts_hash(distinct), "cir")
            cached = self.cache.get_or_compute(key, lambda: self.encoder.encode_documents(distinct))
            encoded = emb.as_dense(cached.embeddings, name="cir text vectors")
        row = {text: i for i, text in enumerate(distinct)}
        return np.ascontiguousarray(encoded[[row[t] for t in texts]], dtype=np.float32)
