"""LG-ANNA's soft labels as an embedlab-train loss (``lganna``).

For query ``i`` and its own candidates ``C_i`` (its positive and its hard negatives), the teacher
reranker's scores ``r`` give ``P_T = softmax(r / teacher_temperature)`` and the student's cosines
``P_S = softmax(s / temperature)``; the loss is ``hard_weight * InfoNCE + soft_weight *
KL(P_T || P_S)`` (mean over queries). ``soft_weight = 0`` is ``infonce``; ``hard_weight = 0`` is
Qwen3-VL-Embedding's distillation stage (report eq. 3: cross-entropy to the reranker's distribution,
which differs from the KL by the teacher's entropy, a constant). LG-ANNA does not publish the mix
(research brief section 11, [inferred]); both weights are parameters.

Teacher scores of every training query's positives and mined candidates are computed once in
:meth:`LGANNA.prepare` (one batched reranker call) and memoised; pairs met later (random padding
negatives) are scored on demand.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
from embedlab_train import Batch, InfoNCE, TrainingContext
from embedlab_train.losses import positive_number

from embedlab.errors import ConfigError
from embedlab_lganna.teacher import build_teacher, teacher_spec

_v = attrs.validators
_weight = [_v.instance_of((int, float)), _v.not_(_v.instance_of(bool)), _v.ge(0)]


class LGANNA(InfoNCE):
    """InfoNCE plus the KL divergence from a teacher reranker's distribution over each query's own
    candidates to the student's."""

    name = "lganna"

    @attrs.frozen(kw_only=True)
    class Config(InfoNCE.Config):
        """``teacher``: an installed reranker (name or table), e.g. ``{ name = "yesno", model_path =
        ... }``; ``teacher_temperature`` divides its scores; ``soft_weight`` (KL) and
        ``hard_weight`` (InfoNCE); ``prefetch_depth``: first-stage candidates per training query
        whose teacher scores are computed before training (0: score on demand only)."""

        teacher: Any = attrs.field(default="maxsim", converter=teacher_spec)
        teacher_temperature: float = attrs.field(default=1.0, validator=positive_number)
        soft_weight: float = attrs.field(default=1.0, validator=_weight)
        hard_weight: float = attrs.field(default=1.0, validator=_weight)
        prefetch_depth: int = attrs.field(default=30, validator=[_v.instance_of(int), _v.ge(0)])

        def __attrs_post_init__(self) -> None:
            if self.soft_weight == 0 and self.hard_weight == 0:
                raise ValueError("soft_weight and hard_weight are both 0: nothing to train")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.teacher = build_teacher(self.config.teacher, self.name) if self.config.soft_weight else None

    def prepare(self, context: TrainingContext) -> None:
        if self.teacher is None or not self.config.prefetch_depth:
            return
        data, pairs = context.data, {}
        for q, p in zip(data.query.tolist(), data.positive.tolist()):
            pairs.setdefault(q, []).append(p)
        for candidates in context.rankings():
            for q in pairs:
                row = candidates.positions[q, :self.config.prefetch_depth]
                pairs[q].extend(row[row >= 0].tolist())
        self.teacher.prefetch(data, pairs.items())

    def own_candidates(self, batch: Batch) -> np.ndarray:
        """``(B, 1 + K)`` batch columns of each query's positive and own hard negatives."""
        b, k = batch.size, batch.negatives_per_query
        return np.arange(b)[:, None] + b * np.arange(k + 1)[None, :]

    def teacher_distribution(self, batch: Batch) -> torch.Tensor:
        """``(B, 1 + K)`` softmax of the teacher's scores over each query's own candidates."""
        assert self.teacher is not None
        columns = self.own_candidates(batch)
        queries = batch.data.query[batch.rows]
        scores = self.teacher.rows(batch.data, queries, batch.doc_positions[columns])
        return torch.softmax(scores / self.config.teacher_temperature, dim=1).to(batch.queries.device)

    def soft_loss(self, batch: Batch) -> torch.Tensor:
        """Mean over queries of ``KL(P_T || P_S)`` over their own candidates."""
        if batch.negatives_per_query < 1:
            raise ConfigError("lganna: soft labels need hard negatives (each query's own candidates); use "
                              "negatives = { name = \"mined\", ... } or another sampler with count >= 1")
        columns = torch.from_numpy(self.own_candidates(batch)).to(batch.queries.device)
        student = batch.scores().gather(1, columns) / self.temperature()
        target = self.teacher_distribution(batch).to(student.dtype)
        log_student = torch.log_softmax(student, dim=1)
        return torch.sum(target * (torch.log(target.clamp_min(1e-30)) - log_student), dim=1).mean()

    def __call__(self, batch: Batch) -> torch.Tensor:
        loss = self.config.hard_weight * super().__call__(batch) if self.config.hard_weight else 0.0
        if self.config.soft_weight:
            loss = loss + self.config.soft_weight * self.soft_loss(batch)
        return loss  # type: ignore[return-value]
