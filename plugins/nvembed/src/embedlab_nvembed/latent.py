"""NV-Embed's latent attention layer (Lee et al., 2024, section 3.2; official ``LatentAttentionModel``
of ``nvidia/NV-Embed-v2``), read for the layout and written anew with embedlab-train's blocks.

The last layer's token states ``H`` ``(B, T, d)`` are the *queries*; a trainable latent array
``Lat`` ``(r, d)`` gives the keys and values (the reverse of a Perceiver resampler). With pre-norm
LayerNorms on both sides and bias-free projections::

    O  = softmax(LN(H) W_q (LN(Lat) W_k)^T / sqrt(d_h)) LN(Lat) W_v     per head, concatenated
    H1 = O W_o + H
    H2 = GEGLU-FF(LN(H1)) + H1          FF: Linear(d, 2 m d) -> x * GELU(gate) -> Linear(m d, d)
    e  = masked mean of H2 over the text's tokens          (normalised by the encoder)

Our addition (``zero_init``, on by default): ``W_o`` and the FF's output layer start at zero, so
``H2 = H`` and ``e`` is exactly the frozen model's mean pooling before training; a random start
would throw away the pretrained space on a small training set. Each token attends to the latents
only, so padding never changes a real token's output.
"""

from __future__ import annotations

import torch
from embedlab_train import masked_mean
from embedlab_train.blocks import CrossAttention, FeedForward, zero_


class LatentAttentionPooling(torch.nn.Module):
    """The latent attention layer followed by masked mean pooling (see the module docstring)."""

    def __init__(self, dim: int, *, latents: int = 512, heads: int = 8, head_dim: int | None = None, mult: int = 4,
                 zero_init: bool = True) -> None:
        super().__init__()
        self.latents = torch.nn.Parameter(torch.randn(latents, dim))
        self.norm_tokens = torch.nn.LayerNorm(dim)
        self.norm_latents = torch.nn.LayerNorm(dim)
        self.attention = CrossAttention(dim, heads, head_dim or dim // heads)
        self.feed_forward = FeedForward(dim, mult)
        if zero_init:
            zero_(self.attention.to_out, self.feed_forward.out)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        hidden = self.attention(self.norm_tokens(states), self.norm_latents(self.latents)[None]) + states
        hidden = self.feed_forward(hidden) + hidden
        return masked_mean(hidden, mask)
