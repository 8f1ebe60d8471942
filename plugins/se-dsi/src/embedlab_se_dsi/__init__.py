"""embedlab-se-dsi: SE-DSI (Tang et al., *Semantic-Enhanced Differentiable Search Index Inspired by
Learning Strategies*, 2023) on top of embedlab-dsi: elaborative-description document ids and
rehearsal contents as indexing inputs (both extractive here; see :mod:`embedlab_se_dsi.retriever`)."""

from __future__ import annotations

import embedlab
from embedlab_se_dsi.retriever import SEDSIRetriever, description_ids

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``se-dsi`` retriever (plugin API 1.1)."""
    registry.add("retriever", "se-dsi", SEDSIRetriever)


__all__ = ["EMBEDLAB_API_VERSION", "SEDSIRetriever", "description_ids", "embedlab_register"]
