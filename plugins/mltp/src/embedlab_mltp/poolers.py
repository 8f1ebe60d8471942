"""Poolers over the per-layer means of a frozen encoder (the ``layers`` view of
:mod:`embedlab_train.hidden`: ``states`` ``(B, L + 1, d)``, index 0 the embedding layer).

* :class:`OneLayer`: one layer's mean (``-1``: the last, the frozen model's own pooling);
* :class:`LayerMean`: the uniform mean of layers ``1..L``;
* :class:`ScalarMix`: ELMo's ``gamma * sum_l softmax(w)_l m_l`` over layers ``1..L``;
* :class:`MultiLayerTrainablePooling`: MLTP (Tang & Yang, *Pooling and Attention*, 2024; official
  ``MultiLayersTrainablePooling`` of ``yixuantt/PoolingAndAttn``, read for the layout): the layer
  means plus a learned layer-position embedding are the keys and values of a cross-attention whose
  queries are trainable latents, then a GEGLU feed-forward, then the mean over latents.
  With ``residual`` (ours, default) the output is ``m_L + W_out mean_r(Z2)`` with ``W_out`` zero at
  init, so the untrained head is the frozen model's mean pooling.
"""

from __future__ import annotations

import torch
from embedlab_train.blocks import CrossAttention, FeedForward, zero_


class OneLayer(torch.nn.Module):
    """The masked mean of hidden state ``layer`` (0 = embedding layer, -1 = last)."""

    def __init__(self, layer: int) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return states[:, self.layer]


class LayerMean(torch.nn.Module):
    """The uniform mean of the transformer layers' means (the embedding layer left out)."""

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return states[:, 1:].mean(1)


class ScalarMix(torch.nn.Module):
    """ELMo's scalar mix of layers ``1..L``: ``gamma * sum_l softmax(w)_l m_l``. ``last_weight``
    None starts at the uniform mean (ELMo's ``w = 0``); a number in (0, 1) starts with that weight
    on the last layer and the rest shared equally."""

    def __init__(self, layers: int, last_weight: float | None = None) -> None:
        super().__init__()
        logits = torch.zeros(layers)
        if last_weight is not None and layers > 1:
            logits[-1] = torch.log(torch.tensor(last_weight * (layers - 1) / (1 - last_weight)))
        self.logits = torch.nn.Parameter(logits)
        self.gamma = torch.nn.Parameter(torch.ones(()))

    def weights(self) -> torch.Tensor:
        """The mixing weights ``softmax(w)`` of layers ``1..L``."""
        return torch.softmax(self.logits, dim=0)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.gamma * torch.einsum("l,bld->bd", self.weights(), states[:, 1:])


class MultiLayerTrainablePooling(torch.nn.Module):
    """MLTP over layers ``1..L`` (see the module docstring)."""

    def __init__(self, dim: int, layers: int, *, latents: int = 16, heads: int = 6, head_dim: int = 64, mult: int = 4,
                 residual: bool = True) -> None:
        super().__init__()
        self.latents = torch.nn.Parameter(torch.randn(latents, dim))
        self.layer_embedding = torch.nn.Parameter(0.02 * torch.randn(layers, dim))
        self.norm_latents = torch.nn.LayerNorm(dim)
        self.norm_layers = torch.nn.LayerNorm(dim)
        self.attention = CrossAttention(dim, heads, head_dim)
        self.feed_forward = FeedForward(dim, mult)
        self.out = torch.nn.Linear(dim, dim) if residual else None
        if self.out is not None:
            zero_(self.out)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        layers = self.norm_layers(states[:, 1:] + self.layer_embedding)
        latents = self.latents.expand(states.shape[0], -1, -1)
        z = self.attention(self.norm_latents(latents), layers) + latents
        pooled = (self.feed_forward(z) + z).mean(1)
        return pooled if self.out is None else states[:, -1] + self.out(pooled)
