"""CART (Context-Anchored Recurrent Transformer) as a small text encoder, and the dense baseline.

From CART's abstract (no official code is public; this is a reconstruction, see the README):

* a **prelude** of ``P`` ordinary transformer layers turns token embeddings into context states
  ``H``;
* the **anchor**: keys and values are computed **once** from ``H`` through multi-head latent
  attention (a shared low-rank latent ``c = H W_down``, ``K = c W_k``, ``V = c W_v``);
* one **core** block, its weights shared, is applied ``R`` times to the state ``h`` (``h_0 = H``):
  ``u_r = core(h_r + e_r)`` with a loop-index embedding ``e_r``; the core cross-attends to the
  frozen ``K``/``V`` (no self-attention recomputed per iteration) and applies a feed-forward;
* a learned **LTI gate** keeps the recurrence stable: ``h_{r+1} = a * h_r + b * u_r`` with
  ``a = sigmoid(alpha)`` per channel, so the state matrix ``diag(a)`` has spectral radius
  ``max(a) < 1`` (the paper reports it settling in 0.79-0.83);
* a final norm and masked mean pooling (the coda), L2-normalised for retrieval.

The dense baseline is the prelude's layer type stacked ``layers`` times, same embeddings, norm and
pooling. :func:`matched_dense_layers` gives the depth whose parameters match a CART config.
"""

from __future__ import annotations

import torch
from torch import nn


class FeedForward(nn.Sequential):
    def __init__(self, dim: int, mult: int) -> None:
        super().__init__(nn.Linear(dim, mult * dim), nn.GELU(), nn.Linear(mult * dim, dim))


class SelfAttentionLayer(nn.Module):
    """Pre-norm transformer layer: self-attention and feed-forward, both residual."""

    def __init__(self, dim: int, heads: int, mult: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.feed_forward = FeedForward(dim, mult)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.attention(y, y, y, key_padding_mask=padding, need_weights=False)[0]
        return x + self.feed_forward(self.norm2(x))


class LatentAnchor(nn.Module):
    """Multi-head latent attention's key/value side: ``c = H W_down`` (``latent`` dims), ``K = c W_k``,
    ``V = c W_v``, split into heads. Computed once per forward."""

    def __init__(self, dim: int, heads: int, latent: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.down = nn.Linear(dim, latent, bias=False)
        self.keys = nn.Linear(latent, dim, bias=False)
        self.values = nn.Linear(latent, dim, bias=False)

    def forward(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.down(self.norm(context))
        return split_heads(self.keys(c), self.heads), split_heads(self.values(c), self.heads)


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, length, dim = x.shape
    return x.view(batch, length, heads, dim // heads).transpose(1, 2)


class CoreBlock(nn.Module):
    """The shared recurrent block: cross-attention from the state to the anchor's K/V, feed-forward."""

    def __init__(self, dim: int, heads: int, mult: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.query = nn.Linear(dim, dim, bias=False)
        self.out = nn.Linear(dim, dim)
        self.feed_forward = FeedForward(dim, mult)

    def forward(self, h: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                allowed: torch.Tensor) -> torch.Tensor:
        q = split_heads(self.query(self.norm1(h)), self.heads)
        attended = nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)
        x = h + self.out(attended.transpose(1, 2).reshape(h.shape))
        return x + self.feed_forward(self.norm2(x))


class LTIGate(nn.Module):
    """``h' = a * h + b * u``, ``a = sigmoid(alpha)`` per channel (stable: spectral radius < 1)."""

    def __init__(self, dim: int, initial_a: float = 0.5) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.full((dim,), float(torch.logit(torch.tensor(initial_a)))))
        self.b = nn.Parameter(torch.ones(dim))

    def forward(self, h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.alpha) * h + self.b * u

    def spectral_radius(self) -> float:
        return float(torch.sigmoid(self.alpha.detach()).max())


class TokenEmbedding(nn.Module):
    def __init__(self, vocab: int, dim: int, max_length: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab, dim)
        self.positions = nn.Embedding(max_length, dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.tokens(ids) + self.positions(torch.arange(ids.shape[1], device=ids.device))[None]


def mean_pool(x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    keep = (~padding).to(x.dtype).unsqueeze(-1)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class CART(nn.Module):
    """Prelude, anchor, ``R`` iterations of the shared core with the LTI gate, norm, mean pooling."""

    def __init__(self, vocab: int, dim: int, heads: int, prelude: int, iterations: int, latent: int, mult: int,
                 max_length: int) -> None:
        super().__init__()
        self.embedding = TokenEmbedding(vocab, dim, max_length)
        self.prelude = nn.ModuleList(SelfAttentionLayer(dim, heads, mult) for _ in range(prelude))
        self.anchor = LatentAnchor(dim, heads, latent)
        self.core = CoreBlock(dim, heads, mult)
        self.loop_index = nn.Embedding(max(iterations, 1), dim)
        nn.init.zeros_(self.loop_index.weight)
        self.gate = LTIGate(dim)
        self.norm = nn.LayerNorm(dim)
        self.iterations = iterations

    def forward(self, ids: torch.Tensor, padding: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        h = self.embedding(ids)
        for layer in self.prelude:
            h = layer(h, padding)
        keys, values = self.anchor(h)                       # once: the anchor never changes
        allowed = (~padding)[:, None, None, :]
        for r in range(self.iterations if iterations is None else iterations):
            index = self.loop_index.weight[min(r, self.loop_index.num_embeddings - 1)]
            h = self.gate(h, self.core(h + index, keys, values, allowed))
        return mean_pool(self.norm(h), padding)


class Dense(nn.Module):
    """The dense baseline: ``layers`` distinct transformer layers, same embeddings, norm, pooling."""

    def __init__(self, vocab: int, dim: int, heads: int, layers: int, mult: int, max_length: int) -> None:
        super().__init__()
        self.embedding = TokenEmbedding(vocab, dim, max_length)
        self.layers = nn.ModuleList(SelfAttentionLayer(dim, heads, mult) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, ids: torch.Tensor, padding: torch.Tensor, iterations: int | None = None) -> torch.Tensor:
        h = self.embedding(ids)
        for layer in self.layers:
            h = layer(h, padding)
        return mean_pool(self.norm(h), padding)


def body_parameters(module: nn.Module) -> int:
    """Stored parameters outside the token and position embeddings (what depth changes)."""
    embedding = sum(p.numel() for p in module.embedding.parameters())
    return sum(p.numel() for p in module.parameters()) - embedding


def matched_dense_layers(dim: int, heads: int, prelude: int, latent: int, mult: int) -> int:
    """The dense depth whose body parameters are closest to CART's (stored-parameter parity)."""
    cart = body_parameters(CART(1, dim, heads, prelude, 1, latent, mult, 1)) - dim  # loop-index rows excluded
    layer = body_parameters(Dense(1, dim, heads, 1, mult, 1)) - body_parameters(Dense(1, dim, heads, 0, mult, 1))
    return max(1, round(cart / layer))
