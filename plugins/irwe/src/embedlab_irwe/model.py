"""IRWE's two attention units and their joint objective (torch).

* **Identity unit**: a node's sampled anonymous walks are tokens (an embedding table over the
  anonymous-walk *patterns*, which exist in every graph) plus its log-degree; a Transformer encoder
  layer attends over them and the mean is the identity embedding. Its objective reconstructs the
  node's anonymous-walk distribution (cross-entropy against the empirical distribution of many more
  walks) and its log-degree.
* **Position unit**: a node's random walks are sequences whose steps carry the visited node's anchor
  reachability, the visited node's *identity embedding* (so both units are optimised jointly) and a
  step embedding; a Transformer encoder layer attends over each walk and the mean over walks is the
  position embedding. Its objective is skip-gram with negative sampling on walk co-occurrence.
"""

from __future__ import annotations

import torch
from torch import nn


def _encoder_layer(width: int, heads: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)


class IdentityUnit(nn.Module):
    def __init__(self, n_patterns: int, width: int, heads: int) -> None:
        super().__init__()
        self.patterns = nn.Embedding(n_patterns, width)
        self.degree = nn.Linear(1, width)
        self.attention = _encoder_layer(width, heads)
        self.reconstruct = nn.Linear(width, n_patterns)
        self.predict_degree = nn.Linear(width, 1)

    def forward(self, walk_ids: torch.Tensor, log_degree: torch.Tensor) -> torch.Tensor:
        """``walk_ids (n, W)`` anonymous-walk ids, ``log_degree (n, 1)`` -> ``(n, width)``."""
        tokens = self.patterns(walk_ids) + self.degree(log_degree)[:, None, :]
        return self.attention(tokens).mean(dim=1)

    def loss(self, embedding: torch.Tensor, distribution: torch.Tensor, log_degree: torch.Tensor) -> torch.Tensor:
        log_probs = torch.log_softmax(self.reconstruct(embedding), dim=1)
        reconstruction = -(distribution * log_probs).sum(dim=1).mean()
        return reconstruction + nn.functional.mse_loss(self.predict_degree(embedding), log_degree)


class PositionUnit(nn.Module):
    def __init__(self, n_anchors: int, width: int, heads: int, walk_length: int) -> None:
        super().__init__()
        self.reach = nn.Linear(n_anchors, width)
        self.identity = nn.Linear(width, width)
        self.step = nn.Embedding(walk_length, width)
        self.attention = _encoder_layer(width, heads)

    def forward(self, walks: torch.Tensor, reach: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        """``walks (n, W, L)`` node positions (walk ``w`` of node ``i`` starts at ``i``), per-node
        ``reach (N, K)`` and ``identity (N, width)`` -> ``(n, width)``."""
        n, count, length = walks.shape
        steps = self.step(torch.arange(length))[None, :, :]
        tokens = self.reach(reach[walks]) + self.identity(identity[walks]) + steps
        encoded = self.attention(tokens.reshape(n * count, length, -1))
        return encoded.mean(dim=1).reshape(n, count, -1).mean(dim=1)


def skipgram_loss(position: torch.Tensor, sources: torch.Tensor, contexts: torch.Tensor,
                  negatives: torch.Tensor) -> torch.Tensor:
    """Negative-sampling skip-gram: co-occurring pairs score high, random pairs low."""
    source = position[sources]
    positive = (source * position[contexts]).sum(dim=1)
    negative = (source[:, None, :] * position[negatives]).sum(dim=2)
    return -(nn.functional.logsigmoid(positive).mean() + nn.functional.logsigmoid(-negative).mean())
