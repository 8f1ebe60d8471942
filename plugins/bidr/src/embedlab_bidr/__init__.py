"""embedlab-bidr: the serving side of BiDR (Xiao et al., WWW 2022), a two-tier index.

``bidr`` (index): compact codes in memory (by default the core's plain PQ compressor ``pq``, or any
installed compressor through ``use_compressor``) find the top-N candidates; the full-precision
float32 vectors stay in a memory-mapped ``.npy`` file on disk and re-score only those candidates.
"""

from __future__ import annotations

import embedlab
from embedlab_bidr.index import BiDRIndex
from embedlab_bidr.vectors import VectorFile

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``bidr`` index."""
    registry.add("index", "bidr", BiDRIndex)


__all__ = ["EMBEDLAB_API_VERSION", "BiDRIndex", "VectorFile", "embedlab_register"]
