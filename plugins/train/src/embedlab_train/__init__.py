"""embedlab-train: fine-tune transformers encoders with contrastive losses, inside embedlab.

Registers the encoders ``finetune`` (the whole transformer is trained) and ``frozen-head`` (a
pooling head trained over a frozen transformer's cached hidden states), both ``LearnsFromQueries``
(``[dataset] train_split`` trains them), and declares four component kinds any plugin can extend:

* ``loss`` (:class:`embedlab_train.losses.Loss`): ``infonce``, ``matryoshka``;
* ``negatives`` (:class:`embedlab_train.negatives.NegativeSampler`): ``in-batch``, ``mined``;
* ``pair-filter`` (:class:`embedlab_train.filters.PairFilter`);
* ``pooling-head`` (:class:`embedlab_train.heads.PoolingHead`): ``mean``, ``linear``.

Other students (a model trained from scratch) reuse the loop through :class:`embedlab_train.student.TrainsStudent`.

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
from embedlab_train.heads import FrozenHeadEncoder, HeadModel, LinearHead, MeanHead, PoolingHead, masked_mean
from embedlab_train.hidden import FrozenEncoder, HiddenStates
from embedlab_train.losses import Batch, InfoNCE, Loss, Matryoshka, cosine, cross_entropy_rows
from embedlab_train.negatives import InBatch, Mined, NegativeSampler
from embedlab_train.settings import TrainingSettings
from embedlab_train.soup import average_weights, make_soup
from embedlab_train.student import Trained, TrainsStudent
from embedlab_train.teacher import RerankerScores

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Declare the ``loss``, ``negatives``, ``pair-filter`` and ``pooling-head`` kinds; register
    ``finetune``, ``frozen-head`` and the built-in losses, samplers and heads."""
    for kind, description in KINDS.items():
        registry.add_kind(kind, description=description)
    registry.add("encoder", "finetune", FineTunedEncoder)
    registry.add("encoder", "frozen-head", FrozenHeadEncoder)
    registry.add("pooling-head", "mean", MeanHead)
    registry.add("pooling-head", "linear", LinearHead)
    registry.add("loss", "infonce", InfoNCE)
    registry.add("loss", "matryoshka", Matryoshka)
    registry.add("negatives", "in-batch", InBatch)
    registry.add("negatives", "mined", Mined)


__all__ = ["Batch", "Candidates", "EMBEDLAB_API_VERSION", "FineTunedEncoder", "FrozenEncoder", "FrozenHeadEncoder",
           "HeadModel", "HiddenStates", "InBatch", "InfoNCE", "LinearHead", "Loss", "Matryoshka", "MeanHead", "Mined",
           "NegativeSampler", "PairFilter", "PoolingHead", "RerankerScores", "Trained", "TrainingContext",
           "TrainingSet", "TrainingSettings", "TrainsStudent", "average_weights", "cosine", "cross_entropy_rows",
           "embedlab_register", "make_soup", "masked_mean"]
