"""KaLM-Embedding's ranking-consistency filter (official ``train/hn_mine.py``): a training pair is
dropped when a first stage (the previous model) does not rank its positive within the top
``top_k`` of the query (the positive's score is below the score at rank ``top_k``), which removes
mislabelled or unanswerable pairs."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from embedlab_train import PairFilter, TrainingContext
from embedlab_train.context import first_stage_spec

_v = attrs.validators


class RankConsistency(PairFilter):
    """Keep (query, positive) pairs whose positive a first stage ranks in the query's top ``top_k``."""

    name = "rank-consistency"

    @attrs.frozen(kw_only=True)
    class Config:
        """``first_stage``: encoder name or ``{encoder = ..., index = ...}`` (default zero-shot
        ``minilm``, exact search); ``top_k``: KaLM's ``filter_topk`` (50)."""

        first_stage: Any = attrs.field(default="minilm", converter=first_stage_spec)
        top_k: int = attrs.field(default=50, validator=[_v.instance_of(int), _v.ge(1)])

    def keep(self, context: TrainingContext) -> np.ndarray:
        data = context.data
        candidates = context.candidates(self.config.first_stage, self.config.top_k)
        return np.asarray([candidates.rank_of(q, p) < self.config.top_k
                           for q, p in zip(data.query.tolist(), data.positive.tolist())], dtype=bool)
