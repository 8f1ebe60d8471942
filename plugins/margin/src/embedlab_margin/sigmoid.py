"""The sigmoid (SigLIP-style) loss with learnable inverse temperature and bias.

For every valid (query j, document i) pair with score s = <U_j, V_i>:
``softplus(t * (s - b) * sign)``, sign = -1 for a relevant pair and +1 otherwise, i.e. the logistic
loss of classifying the pair as relevant when ``t * (s - b) > 0``. ``t`` (init 1.0) and ``b``
(init 0.0) are learned, one pair per problem (Bangachev et al., 2026: the global minimisers of this
loss are the maximal-margin embeddings); ``learn_bias=False`` keeps ``b`` at its initial value.

The authors' code sums over pairs; this one averages over the valid pairs of each problem so that
the loss-plateau rule (``min_delta``) means the same at every size. Adam's update is invariant to
the scale of the loss (up to its epsilon), so the trajectories are those of the summed loss.
"""

from __future__ import annotations

import attrs
import torch
import torch.nn.functional as F
from attrs import validators as v
from embedlab_limit.free_embedding import Masks


@attrs.frozen
class SigmoidLoss:
    """Pairwise logistic loss ``softplus(t (s - b) sign)`` with learnable ``t`` and ``b``."""

    initial_temperature: float = attrs.field(default=1.0, validator=v.gt(0))
    initial_bias: float = attrs.field(default=0.0)
    #: False keeps ``b`` at ``initial_bias``: with 0, the loss's decision threshold is the zero
    #: threshold of the paper's retrieval margin.
    learn_bias: bool = attrs.field(default=True, validator=v.instance_of(bool))

    @property
    def name(self) -> str:
        return "sigmoid" if self.learn_bias else f"sigmoid-b{self.initial_bias:g}"

    def initial_parameters(self, batch: int) -> dict[str, torch.Tensor]:
        parameters = {"t": torch.full((batch,), float(self.initial_temperature))}
        if self.learn_bias:
            parameters["b"] = torch.full((batch,), float(self.initial_bias))
        return parameters

    def __call__(self, scores: torch.Tensor, masks: Masks, parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        t = parameters["t"][:, None, None]
        b = parameters["b"][:, None, None] if self.learn_bias else self.initial_bias
        losses = F.softplus(t * (scores - b) * masks.sign) * masks.valid
        return losses.sum((1, 2)) / masks.valid.sum((1, 2)).clamp_min(1.0)
