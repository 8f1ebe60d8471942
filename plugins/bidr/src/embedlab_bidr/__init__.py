"""embedlab-bidr: the serving side of BiDR (Xiao et al., WWW 2022), a two-tier index.

``bidr`` (index): compact codes in memory (plain PQ from :mod:`embedlab.pq`, or any installed
compressor through ``use_compressor``) find the top-N candidates; the full-precision float32 vectors
stay in a memory-mapped ``.npy`` file on disk and re-score only those candidates.
``bidr-pq`` (compressor): the default in-memory codes, plain PQ with ADC scoring.
"""

from __future__ import annotations

import embedlab
from embedlab_bidr.index import BiDRIndex
from embedlab_bidr.pq import PQCompressor
from embedlab_bidr.vectors import VectorFile

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``bidr`` index and its default ``bidr-pq`` compressor."""
    registry.add("index", "bidr", BiDRIndex)
    registry.add("compressor", "bidr-pq", PQCompressor)


__all__ = ["EMBEDLAB_API_VERSION", "BiDRIndex", "PQCompressor", "VectorFile", "embedlab_register"]
