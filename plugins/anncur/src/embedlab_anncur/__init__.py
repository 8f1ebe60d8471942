"""embedlab-anncur: ANNCUR (Yadav et al., EMNLP 2022), k-NN search for an expensive black-box
scorer (any embedlab ``Reranker``) through a CUR decomposition of its query x item score matrix."""

from __future__ import annotations

import embedlab
from embedlab_anncur.cur import cur_factors
from embedlab_anncur.encoder import Anncur
from embedlab_anncur.scoring import score_all

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``anncur`` encoder."""
    registry.add("encoder", "anncur", Anncur)


__all__ = ["EMBEDLAB_API_VERSION", "Anncur", "cur_factors", "embedlab_register", "score_all"]
