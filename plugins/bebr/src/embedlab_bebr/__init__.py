"""embedlab-bebr: Binary Embedding-based Retrieval (Gan et al., KDD 2023, arXiv 2302.08714).

One compressor, ``bebr``: recurrent binarisation into ``u + 1`` bits per code dimension, trained
on the float vectors alone, scored by symmetric distance calculation (SDC) with per-byte lookup
tables, or asymmetrically (ADC). It is a :class:`embedlab.CodeScorer`, so the core
:class:`embedlab.index.ExactIndex` searches its codes directly (``use_compressor``).
"""

from __future__ import annotations

import embedlab
from embedlab_bebr.compressor import BEBRCompressor

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``bebr`` compressor."""
    registry.add("compressor", "bebr", BEBRCompressor)


__all__ = ["EMBEDLAB_API_VERSION", "BEBRCompressor", "embedlab_register"]
