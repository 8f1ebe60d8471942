"""embedlab-lganna: LG-ANNA-Embedding's training additions (LG AI Research, 2025) on embedlab-train.

* loss ``lganna``: InfoNCE plus the KL divergence from a teacher reranker's distribution over each
  query's candidates (soft labels); the teacher is any installed reranker (embedlab-qwen3's
  ``yesno`` cross-encoder, ``maxsim``...);
* negatives ``adaptive-margin``: mined hard negatives without the candidates the teacher scores
  within an adaptive margin of the positive (likely false negatives).

The paper's in-context few-shot prompts and Mistral-7B backbone are out of scope for MiniLM.
"""

from __future__ import annotations

import embedlab
from embedlab_lganna.loss import LGANNA
from embedlab_lganna.negatives import AdaptiveMargin

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``lganna`` loss and the ``adaptive-margin`` sampler (kinds of embedlab-train)."""
    registry.add("loss", "lganna", LGANNA)
    registry.add("negatives", "adaptive-margin", AdaptiveMargin)


__all__ = ["EMBEDLAB_API_VERSION", "LGANNA", "AdaptiveMargin", "embedlab_register"]
