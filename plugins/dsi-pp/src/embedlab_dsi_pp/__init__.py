"""embedlab-dsi-pp: DSI++ (Mehta et al., *DSI++: Updating Transformer Memory with New Documents*,
EMNLP 2023) on top of embedlab-dsi: continual indexing of new documents with pseudo-query replay
(extractive here) and Sharpness-Aware Minimization (see :mod:`embedlab_dsi_pp.retriever`), and the
continual-learning measures (:mod:`embedlab_dsi_pp.forgetting`)."""

from __future__ import annotations

import embedlab
from embedlab_dsi_pp.forgetting import ContinualScores
from embedlab_dsi_pp.retriever import DSIPPRetriever

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``dsi-pp`` retriever (plugin API 1.1)."""
    registry.add("retriever", "dsi-pp", DSIPPRetriever)


__all__ = ["ContinualScores", "DSIPPRetriever", "EMBEDLAB_API_VERSION", "embedlab_register"]
