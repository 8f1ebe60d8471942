"""KaLM-Embedding-V2's training objective as an embedlab-train loss (``kalm``):

* **focal reweighting**: ``L = -(1/B) sum_i (1 - p_i)^gamma log p_i`` with ``p_i`` the softmax
  probability of query ``i``'s positive (the V2 report describes focal-style reweighting; the exact
  form is our reconstruction, research brief §8 [inferred]); ``gamma = 0`` is InfoNCE. The weight is
  differentiated through, as in the focal loss, unless ``detach_weights``.
* **online hard-negative mixing** (MoCHi-style, [inferred]): per query, ``mix_negatives`` synthetic
  negatives ``normalize(a * n_1 + (1 - a) * n_2)`` of two of its ``mix_pool`` hardest current
  negatives (``a ~ U(0, 1)``), appended to the softmax without gradient through them (the query's
  gradient flows). Draws come from torch's generator, which training seeds and checkpoints.
"""

from __future__ import annotations

import attrs
import torch
from embedlab_train import Batch, InfoNCE

_v = attrs.validators


class KaLM(InfoNCE):
    """Focal-reweighted InfoNCE with online hard-negative mixing (KaLM-Embedding-V2)."""

    name = "kalm"

    @attrs.frozen(kw_only=True)
    class Config(InfoNCE.Config):
        """``gamma``: focal exponent (0: off); ``detach_weights``; ``mix_negatives``: synthetic
        negatives per query (0: off); ``mix_pool``: the hardest current negatives they mix."""

        gamma: float = attrs.field(default=1.0, validator=[_v.instance_of((int, float)), _v.ge(0)])
        detach_weights: bool = attrs.field(default=False, validator=_v.instance_of(bool))
        mix_negatives: int = attrs.field(default=0, validator=[_v.instance_of(int), _v.ge(0)])
        mix_pool: int = attrs.field(default=8, validator=[_v.instance_of(int), _v.ge(2)])

    def synthetic_negatives(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor:
        """``(B, H, d)`` unit vectors mixed from each query's hardest unmasked negatives (no gradient)."""
        b, h = batch.size, self.config.mix_negatives
        docs = torch.nn.functional.normalize(batch.documents.detach(), dim=1)
        ranked = logits.detach().clone()
        ranked[torch.arange(b), torch.arange(b)] = float("-inf")          # never the positive
        pool = min(self.config.mix_pool, int(torch.isfinite(ranked).sum(1).min()))
        if pool < 2:
            return docs.new_zeros((b, 0, docs.shape[1]))
        hardest = ranked.topk(pool, dim=1).indices                        # (B, pool)
        pick = torch.randint(pool, (b, h, 2), device=docs.device)
        first = docs[hardest.gather(1, pick[..., 0])]
        second = docs[hardest.gather(1, pick[..., 1])]
        a = torch.rand((b, h, 1), dtype=docs.dtype, device=docs.device)
        return torch.nn.functional.normalize(a * first + (1 - a) * second, dim=-1)

    def logits(self, batch: Batch) -> torch.Tensor:
        logits = super().logits(batch)
        if not self.config.mix_negatives:
            return logits
        synthetic = self.synthetic_negatives(batch, logits)
        queries = torch.nn.functional.normalize(batch.queries, dim=1)
        extra = torch.einsum("bd,bhd->bh", queries, synthetic.to(queries.dtype)) / self.temperature()
        return torch.cat([logits, extra], dim=1)

    def example_weights(self, batch: Batch, logits: torch.Tensor) -> torch.Tensor | None:
        if not self.config.gamma:
            return None
        rows = torch.arange(batch.size, device=logits.device)
        p = torch.softmax(logits, dim=1)[rows, rows]
        weights = (1 - p).clamp(min=0) ** self.config.gamma
        return weights.detach() if self.config.detach_weights else weights
