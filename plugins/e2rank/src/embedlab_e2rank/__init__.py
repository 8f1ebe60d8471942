"""embedlab-e2rank: E2Rank reranking (Liu et al., 2025) with any installed dense encoder: cosine
between each candidate and the embedding of a listwise prompt of the query and its first-stage top-K."""

from __future__ import annotations

import embedlab
from embedlab_e2rank.prompt import DEFAULT_INSTRUCTION, listwise_prompt
from embedlab_e2rank.reranker import E2Rank

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``e2rank`` reranker."""
    registry.add("reranker", "e2rank", E2Rank)


__all__ = ["DEFAULT_INSTRUCTION", "E2Rank", "EMBEDLAB_API_VERSION", "embedlab_register", "listwise_prompt"]
