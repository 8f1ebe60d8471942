"""embedlab-qwen3: the text side of Qwen3-VL-Embedding / Qwen3-VL-Reranker (Li et al., 2026) on
embedlab-train.

* loss ``qwen3``: InfoNCE with the report's five-term partition function and its false-negative
  mask (a term more than 0.1 above the positive, or the positive itself, leaves the denominator);
* loss ``cosent``: CoSENT over graded (query, document) pairs;
* reranker ``yesno``: the yes/no cross-encoder (``sigmoid(logit(yes) - logit(no))``) built from
  all-MiniLM-L6-v2 and trained by SFT on a judged split.

Matryoshka (MRL) over any loss is embedlab-train's ``matryoshka``.
"""

from __future__ import annotations

import embedlab
from embedlab_qwen3.losses import CoSent, Qwen3
from embedlab_qwen3.reranker import YesNoReranker

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``qwen3`` and ``cosent`` losses (kind ``loss`` of embedlab-train) and the
    ``yesno`` reranker."""
    registry.add("loss", "qwen3", Qwen3)
    registry.add("loss", "cosent", CoSent)
    registry.add("reranker", "yesno", YesNoReranker)


__all__ = ["EMBEDLAB_API_VERSION", "CoSent", "Qwen3", "YesNoReranker", "embedlab_register"]
