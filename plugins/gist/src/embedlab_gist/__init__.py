"""embedlab-gist: GISTEmbed's guided in-batch negative selection (Solatorio, 2024) as the
embedlab-train loss ``gist``: a guide model (any installed encoder or reranker) masks in-batch
candidates it scores above the labelled positive, so likely false negatives are not pushed away."""

from __future__ import annotations

import embedlab
from embedlab_gist.loss import GIST

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``gist`` loss (kind ``loss``, declared by embedlab-train)."""
    registry.add("loss", "gist", GIST)


__all__ = ["EMBEDLAB_API_VERSION", "GIST", "embedlab_register"]
