"""embedlab-rzen: RzenEmbed's improved InfoNCE (Jian et al., 2025) as the embedlab-train loss
``rzen``: hardness weights ``exp(alpha * s)`` on negatives, a false-negative mask and a learnable
temperature. Model soup (RzenEmbed's LoRA souping, here full-weight averaging) is
``embedlab_train.make_soup``."""

from __future__ import annotations

import embedlab
from embedlab_rzen.loss import Rzen

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``rzen`` loss (kind ``loss``, declared by embedlab-train)."""
    registry.add("loss", "rzen", Rzen)


__all__ = ["EMBEDLAB_API_VERSION", "Rzen", "embedlab_register"]
