"""embedlab-kalm: KaLM-Embedding-V2's training recipe on embedlab-train: the ``kalm`` loss (focal
reweighting, online hard-negative mixing) and the ``rank-consistency`` pair filter; offline hard
negatives from ranks 50-100 are embedlab-train's ``mined`` sampler (``start = 50, depth = 100,
sampling = "uniform"``) and model soup is ``embedlab_train.make_soup``."""

from __future__ import annotations

import embedlab
from embedlab_kalm.filters import RankConsistency
from embedlab_kalm.loss import KaLM

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``kalm`` loss and the ``rank-consistency`` pair filter (kinds of embedlab-train)."""
    registry.add("loss", "kalm", KaLM)
    registry.add("pair-filter", "rank-consistency", RankConsistency)


__all__ = ["EMBEDLAB_API_VERSION", "KaLM", "RankConsistency", "embedlab_register"]
