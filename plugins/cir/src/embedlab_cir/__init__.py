"""embedlab-cir: composed image retrieval (reference image + modification instruction -> target
image) with one small multimodal encoder trained in two stages, after "Compositional Image
Retrieval via Instruction-Aware Contrastive Learning"."""

from __future__ import annotations

import embedlab
from embedlab_cir.encoder import QUERY_MODES, CIREncoder
from embedlab_cir.model import JointEncoder

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``cir`` encoder."""
    registry.add("encoder", "cir", CIREncoder)


__all__ = ["CIREncoder", "EMBEDLAB_API_VERSION", "JointEncoder", "QUERY_MODES", "embedlab_register"]
