"""embedlab-irwe: IRWE, "Inductive Random Walk for Joint Inference of Identity and Position Network
Embedding" (Meng Qin, Dit-Yan Yeung; arXiv 2401.00651).

One graph encoder, ``irwe``: identity embeddings from anonymous-walk statistics and position
embeddings from random walks over anchor-reachability features, two Transformer attention units
trained jointly, inductive (``IRWE.transform`` embeds nodes unseen at training). torch is imported
only when the encoder trains or embeds.
"""

from __future__ import annotations

import embedlab
from embedlab_irwe.encoder import IRWE
from embedlab_irwe.features import AnonymousWalks, anchor_reachability, anonymous_patterns

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``irwe`` graph encoder."""
    registry.add("encoder", "irwe", IRWE)


__all__ = ["EMBEDLAB_API_VERSION", "IRWE", "AnonymousWalks", "anchor_reachability", "anonymous_patterns",
           "embedlab_register"]
