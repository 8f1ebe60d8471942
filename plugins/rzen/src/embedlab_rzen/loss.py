"""RzenEmbed's improved InfoNCE (text part; multimodal backbone and prompts out of scope):

``L_i = -log e^{s_ii/T} / (e^{s_ii/T} + sum_{j != i, kept} w_ij e^{s_ij/T})``, ``w_ij = exp(alpha *
s_ij)`` computed without gradient (LLaVE's hardness weighting, which RzenEmbed adopts), i.e. each
negative logit gains ``alpha * stop_grad(s_ij)``; candidates with ``s_ij >= s_ii - margin`` (no
gradient through the test: at or near the positive's score, duplicates included) are treated as false
negatives and dropped; ``T = exp(-theta)`` with
``theta`` learned when ``learn_temperature`` (CLIP-style logit scale, ``1/T`` clamped to
``max_scale``). With ``alpha = 0``, no mask and a fixed temperature it is ``infonce``.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch
from embedlab_train import Batch, InfoNCE
from embedlab_train.losses import positive_number

_v = attrs.validators


class Rzen(InfoNCE):
    """Hardness-weighted InfoNCE with a false-negative mask and a learnable temperature (RzenEmbed)."""

    name = "rzen"

    @attrs.frozen(kw_only=True)
    class Config(InfoNCE.Config):
        """``alpha``: hardness strength (0: off; LLaVE uses 9, EmbeddingGemma 5); ``hardness_on``:
        ``all`` negatives or only the query's own ``hard`` negatives (sentence-transformers'
        ``all_negatives`` / ``hard_negatives``); ``false_negative_margin`` δ: drop candidates with
        ``s_ij >= s_ii - δ`` (0: at or above the positive, duplicates included; -0.1: Qwen3-VL's
        "more than 0.1 above"; None: no mask);
        ``learn_temperature`` from ``temperature``, ``max_scale`` the largest 1/T allowed."""

        alpha: float = attrs.field(default=5.0, validator=[_v.instance_of((int, float)), _v.ge(0)])
        hardness_on: str = attrs.field(default="all", validator=_v.in_(("all", "hard")))
        false_negative_margin: float | None = attrs.field(default=0.0,
                                                          validator=_v.optional(_v.instance_of((int, float))))
        learn_temperature: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        max_scale: float = attrs.field(default=100.0, validator=positive_number)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(1.0 / self.config.temperature),
                                                           dtype=torch.float64))

    def parameters(self) -> dict[str, torch.Tensor]:
        return {"logit_scale": self.logit_scale} if self.config.learn_temperature else {}

    def temperature(self) -> torch.Tensor | float:
        if not self.config.learn_temperature:
            return self.config.temperature
        return 1.0 / self.logit_scale.clamp(max=math.log(self.config.max_scale)).exp()

    def false_negative_mask(self, scores: torch.Tensor) -> torch.Tensor:
        """``(B, C)``: candidates scoring at least the query's positive minus the margin (never the
        positive itself)."""
        b = scores.shape[0]
        rows = torch.arange(b, device=scores.device)
        positive = scores.detach()[rows, rows].unsqueeze(1)
        mask = scores.detach() >= positive - self.config.false_negative_margin
        mask[rows, rows] = False
        return mask

    def logits(self, batch: Batch) -> torch.Tensor:
        scores = batch.scores()
        temperature = self.temperature()
        logits = scores / (temperature.to(scores.dtype) if torch.is_tensor(temperature) else temperature)
        b, rows = batch.size, torch.arange(batch.size, device=scores.device)
        if self.config.alpha:
            penalty = self.config.alpha * scores.detach()
            penalty[rows, rows] = 0.0
            if self.config.hardness_on == "hard":  # only the query's own hard negatives
                own = torch.zeros_like(penalty, dtype=torch.bool)
                own[rows.unsqueeze(1), rows.unsqueeze(1) + b * torch.arange(1, penalty.shape[1] // b,
                                                                            device=scores.device)] = True
                penalty = penalty.masked_fill(~own, 0.0)
            logits = logits + penalty
        mask = batch.judged_mask() if self.config.mask_judged else torch.zeros_like(logits, dtype=torch.bool)
        if self.config.false_negative_margin is not None:
            mask = mask | self.false_negative_mask(scores)
        return logits.masked_fill(mask, float("-inf"))
