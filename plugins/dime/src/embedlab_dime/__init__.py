"""embedlab-dime: DIME query-aware dimension masking (Faggioli et al., SIGIR 2024) with PRF, oracle
and learned ("Learning to Select", Wu et al., 2026) importance estimators, as a reranker."""

from __future__ import annotations

import embedlab
from embedlab_dime.importance import keep_count, masked_scores, oracle_importance, prf_importance, top_mask
from embedlab_dime.reranker import Dime

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``dime`` reranker."""
    registry.add("reranker", "dime", Dime)


__all__ = ["Dime", "EMBEDLAB_API_VERSION", "embedlab_register", "keep_count", "masked_scores",
           "oracle_importance", "prf_importance", "top_mask"]
