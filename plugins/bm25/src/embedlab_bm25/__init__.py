"""embedlab-bm25: Okapi BM25 as a sparse encoder whose query . document dot product is the BM25 score."""

from __future__ import annotations

import embedlab
from embedlab_bm25.encoder import BM25
from embedlab_bm25.inverted import InvertedIndex
from embedlab_bm25.tokenizer import Tokenizer

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``bm25`` encoder and the ``inverted`` index (exact sparse search)."""
    registry.add("encoder", "bm25", BM25)
    registry.add("index", "inverted", InvertedIndex)


__all__ = ["BM25", "EMBEDLAB_API_VERSION", "InvertedIndex", "Tokenizer", "embedlab_register"]
