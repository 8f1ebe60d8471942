"""Building blocks that pooling heads and small encoders share: multi-head cross-attention with
bias-free projections and a pre-norm GEGLU feed-forward (the Perceiver-style blocks of NV-Embed's
latent attention and of multi-layer trainable pooling)."""

from __future__ import annotations

import math

import torch


class CrossAttention(torch.nn.Module):
    """Multi-head attention of ``queries`` ``(B, n, d)`` over ``context`` ``(B or 1, m, d)``:
    ``softmax(Q K^T / sqrt(head_dim)) V`` per head with ``Q = queries W_q``, ``[K, V] = context W_kv``
    (no biases), heads concatenated and projected back to ``d`` by ``W_o`` (``to_out``).
    ``context_mask`` ``(B, m)`` (True = attend) hides padding keys."""

    def __init__(self, dim: int, heads: int, head_dim: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        self.to_q = torch.nn.Linear(dim, heads * head_dim, bias=False)
        self.to_kv = torch.nn.Linear(dim, 2 * heads * head_dim, bias=False)
        self.to_out = torch.nn.Linear(heads * head_dim, dim, bias=False)

    def _split(self, x: torch.Tensor, batch: int) -> torch.Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2).expand(batch, -1, -1, -1)

    def forward(self, queries: torch.Tensor, context: torch.Tensor,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        batch = queries.shape[0]
        q = self._split(self.to_q(queries), batch)
        k, v = (self._split(x, batch) for x in self.to_kv(context).chunk(2, dim=-1))
        mask = None if context_mask is None else context_mask[:, None, None, :]
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                               scale=1.0 / math.sqrt(self.head_dim))
        return self.to_out(out.transpose(1, 2).reshape(batch, queries.shape[1], self.heads * self.head_dim))


class GEGLU(torch.nn.Module):
    """``x * GELU(gate)`` of the two halves of the last dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value, gate = x.chunk(2, dim=-1)
        return value * torch.nn.functional.gelu(gate)


class FeedForward(torch.nn.Module):
    """Pre-norm GEGLU feed-forward: ``Linear(d, 2 m d) -> x * GELU(gate) -> Linear(m d, d)`` of ``LN(x)``."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.norm = torch.nn.LayerNorm(dim)
        self.inner = torch.nn.Linear(dim, 2 * mult * dim)
        self.activation = GEGLU()
        self.out = torch.nn.Linear(mult * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.activation(self.inner(self.norm(x))))


def zero_(*modules: torch.nn.Linear) -> None:
    """Set the weights (and biases) of linear layers to zero: a residual branch that starts as nothing."""
    for module in modules:
        torch.nn.init.zeros_(module.weight)
        if module.bias is not None:
            torch.nn.init.zeros_(module.bias)
