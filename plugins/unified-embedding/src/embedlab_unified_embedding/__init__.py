"""embedlab-unified-embedding: Unified Embedding (Coleman et al., "Unified Embedding: Battle-Tested
Feature Representations for Web-Scale ML Systems", NeurIPS 2023) as an ``embedding-table`` method.

Feature multiplexing: one table shared by every categorical field; a value of field ``f`` is the
concatenation of ``probes`` rows ``E[h_{f,j}(v) mod M]`` chosen by field- and probe-specific hashes.
Trained and compared through embedlab-tables' harness (``embedlab tables-grid --methods
unified-embedding,hash:scope=field``).
"""

from __future__ import annotations

import embedlab
from embedlab_unified_embedding.method import UnifiedEmbedding, UnifiedTable

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register ``unified-embedding`` in the ``embedding-table`` kind that embedlab-tables declares."""
    from embedlab_tables import KIND

    registry.add(KIND, UnifiedEmbedding.name, UnifiedEmbedding)


__all__ = ["EMBEDLAB_API_VERSION", "UnifiedEmbedding", "UnifiedTable", "embedlab_register"]
