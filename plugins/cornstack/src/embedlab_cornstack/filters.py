"""CoRNStack's dual consistency filter (``dual-consistency``): a (query, positive) pair is kept only
when a pretrained embedder (any installed first stage) ranks the positive within the query's top
``top_k`` documents *and* scores the pair at least ``min_score``. CoRNStack keeps pairs whose
positive is ranked first or second (rank 0 or 1) with a similarity above 0.7 (research brief
section 12 [recalled], matching the published CoRNStack data's ``document_rank`` / ``document_score``
fields)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from embedlab_train import PairFilter, TrainingContext
from embedlab_train.context import first_stage_spec

_v = attrs.validators


class DualConsistency(PairFilter):
    """Keep pairs whose positive is in the first stage's top ``top_k`` with a score >= ``min_score``."""

    name = "dual-consistency"

    @attrs.frozen(kw_only=True)
    class Config:
        """``first_stage``: encoder name or ``{encoder = ..., index = ...}`` (default zero-shot
        ``minilm``, exact cosine); ``top_k``: the rank criterion (2); ``min_score``: the score
        criterion on the first stage's scale (0.7 for cosine; None: rank only)."""

        first_stage: Any = attrs.field(default="minilm", converter=first_stage_spec)
        top_k: int = attrs.field(default=2, validator=[_v.instance_of(int), _v.ge(1)])
        min_score: float | None = attrs.field(default=0.7, validator=_v.optional(
            [_v.instance_of((int, float)), _v.not_(_v.instance_of(bool))]))

    def criteria(self, context: TrainingContext) -> tuple[np.ndarray, np.ndarray]:
        """Per example: (rank criterion met, score criterion met)."""
        data, config = context.data, self.config
        candidates = context.candidates(config.first_stage, config.top_k)
        rank_ok = np.zeros(len(data), dtype=bool)
        score_ok = np.ones(len(data), dtype=bool)
        for e, (q, p) in enumerate(zip(data.query.tolist(), data.positive.tolist())):
            rank = candidates.rank_of(q, p)
            rank_ok[e] = rank < config.top_k
            if config.min_score is not None:
                score_ok[e] = rank_ok[e] and float(candidates.scores[q, rank]) >= config.min_score
        return rank_ok, score_ok

    def keep(self, context: TrainingContext) -> np.ndarray:
        rank_ok, score_ok = self.criteria(context)
        return rank_ok & score_ok
