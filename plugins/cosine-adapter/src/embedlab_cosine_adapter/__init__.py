"""embedlab-cosine-adapter: relevance filtering for embedding-based retrieval (Rossi et al., CIKM
2024). A small network maps each query's raw cosines to calibrated relevance probabilities; one
global threshold then cuts every result list. Also set measures (SetP, SetR, SetF1, SetSize) and the
baselines (global cosine threshold, top-K cutoff)."""

from __future__ import annotations

import embedlab
from embedlab_cosine_adapter.cutoffs import (
    Judgments,
    Sweep,
    choose_threshold,
    cosine_threshold,
    cut,
    judge,
    rank_scores,
    sweep,
    top_k_cutoff,
)
from embedlab_cosine_adapter.measures import SET_MEASURES, SetF1, SetPrecision, SetRecall, SetSize
from embedlab_cosine_adapter.reranker import CosineAdapter

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``cosine-adapter`` reranker and the set measures."""
    registry.add("reranker", "cosine-adapter", CosineAdapter)
    for measure in SET_MEASURES:
        registry.add("metric", measure.name, measure)


__all__ = ["CosineAdapter", "EMBEDLAB_API_VERSION", "Judgments", "SetF1", "SetPrecision", "SetRecall",
           "SetSize", "Sweep", "choose_threshold", "cosine_threshold", "cut", "embedlab_register", "judge",
           "rank_scores", "sweep", "top_k_cutoff"]
