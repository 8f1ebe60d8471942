"""embedlab-train: fine-tune transformers encoders with contrastive losses, inside embedlab.

Registers the encoder ``finetune`` (a ``LearnsFromQueries`` encoder: ``[dataset] train_split``
trains it) and declares three component kinds that any plugin can extend:

* ``loss`` (:class:`embedlab_train.losses.Loss`): ``infonce``, ``matryoshka``;
* ``negatives`` (:class:`embedlab_train.negatives.NegativeSampler`): ``in-batch``, ``mined``;
* ``pair-filter`` (:class:`embedlab_train.filters.PairFilter`).

The training loop (:mod:`embedlab_train.loop`) is ours; sentence-transformers is the reference the
tests compare losses against and the benchmark compares throughput with (see the README).
"""

from __future__ import annotations

import embedlab
from embedlab_train.components import KINDS
from embedlab_train.context import Candidates, TrainingContext
from embedlab_train.data import TrainingSet
from embedlab_train.encoder import FineTunedEncoder
from embedlab_train.filters import PairFilter
from embedlab_train.losses import Batch, InfoNCE, Loss, Matryoshka, cosine, cross_entropy_rows
from embedlab_train.negatives import InBatch, Mined, NegativeSampler
from embedlab_train.soup import average_weights, make_soup
from embedlab_train.teacher import RerankerScores

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Declare the ``loss``, ``negatives`` and ``pair-filter`` kinds; register ``finetune`` and
    the built-in losses and samplers."""
    for kind, description in KINDS.items():
        registry.add_kind(kind, description=description)
    registry.add("encoder", "finetune", FineTunedEncoder)
    registry.add("loss", "infonce", InfoNCE)
    registry.add("loss", "matryoshka", Matryoshka)
    registry.add("negatives", "in-batch", InBatch)
    registry.add("negatives", "mined", Mined)


__all__ = ["Batch", "Candidates", "EMBEDLAB_API_VERSION", "FineTunedEncoder", "InBatch", "InfoNCE", "Loss",
           "Matryoshka", "Mined", "NegativeSampler", "PairFilter", "RerankerScores", "TrainingContext", "TrainingSet",
           "average_weights", "cosine", "cross_entropy_rows", "embedlab_register", "make_soup"]
