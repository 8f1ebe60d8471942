"""embedlab-distillvq: Distill-VQ (Xiao et al., SIGIR 2022) as the embedlab index ``distillvq``:
IVF lists plus PQ residual codes whose centroids are learned by distilling exact dense scores."""

from __future__ import annotations

import embedlab
from embedlab_distillvq.index import DistillVQIndex

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``distillvq`` index."""
    registry.add("index", "distillvq", DistillVQIndex)


__all__ = ["EMBEDLAB_API_VERSION", "DistillVQIndex", "embedlab_register"]
