"""embedlab-cornstack: CoRNStack's data curation (Suresh et al., 2024) on embedlab-train.

* pair filter ``dual-consistency``: keep a (query, positive) pair only when a pretrained embedder
  ranks the positive in the query's top 2 and scores it at least 0.7;
* negatives ``softmax``: hard negatives drawn by softmax over first-stage scores, with a temperature
  curriculum (one temperature per epoch, falling: easy and diverse first, hardest last).

The Stack v2 source data, the 137M CodeRankEmbed model and the CodeRankLLM reranker are out of scope.
"""

from __future__ import annotations

import embedlab
from embedlab_cornstack.filters import DualConsistency
from embedlab_cornstack.negatives import SoftmaxNegatives, gumbel_top_k

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``dual-consistency`` pair filter and the ``softmax`` sampler (kinds of embedlab-train)."""
    registry.add("pair-filter", "dual-consistency", DualConsistency)
    registry.add("negatives", "softmax", SoftmaxNegatives)


__all__ = ["EMBEDLAB_API_VERSION", "DualConsistency", "SoftmaxNegatives", "embedlab_register", "gumbel_top_k"]
