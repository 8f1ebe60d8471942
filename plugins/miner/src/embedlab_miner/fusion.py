"""MINER's two stages as torch modules and plain functions (reconstruction: the paper's code is not
public; see the README).

* :class:`LayerProbe`: a linear probe ``W x`` (base probe) or ``W LN(x)`` (normalised-projection
  probe, LayerNorm without affine) of one layer's mean, ``W`` starting at the identity;
* :func:`select_layers` and :func:`neuron_masks`: the top-``k`` layers by probe score (the last
  always kept) and per-layer keep ratios ``rho_l = rho_min + (rho_max - rho_min) * (a_l - min a) /
  (max a - min a)`` over the most important dimensions (``g_{l,i} = ||W_l[:, i]||``);
* :class:`SparseLayerFusion`: ``e = sum_{l in S} w_l P_l(m_l * mask_l) + b`` with every probe, the
  masks, the selection and the probes' scores kept as fixed-shape parameters and buffers (so a
  saved fusion loads into a freshly built module).
"""

from __future__ import annotations

import math

import numpy as np
import torch


def standardise(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dimension without affine parameters."""
    return torch.nn.functional.layer_norm(x, x.shape[-1:])


class LayerProbe(torch.nn.Module):
    """``W x`` or ``W LN(x)`` of the mean of hidden state ``layer``; ``W`` starts at the identity."""

    def __init__(self, dim: int, layer: int, normalized: bool) -> None:
        super().__init__()
        self.layer, self.normalized = layer, normalized
        self.linear = torch.nn.Linear(dim, dim, bias=False)
        torch.nn.init.eye_(self.linear.weight)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = states[:, self.layer]
        return self.linear(standardise(x) if self.normalized else x)


def select_layers(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best-scoring layers (ties: the later layer), the last always included."""
    last = len(scores) - 1
    order = sorted(range(len(scores)), key=lambda layer: (-scores[layer], -layer))
    chosen = [last] + [layer for layer in order if layer != last][:max(k - 1, 0)]
    return np.array(sorted(chosen), dtype=np.int64)


def keep_ratios(scores: np.ndarray, rho_min: float, rho_max: float) -> np.ndarray:
    """``rho_l``: linear in the layer's score between the worst (``rho_min``) and best (``rho_max``) layer."""
    low, high = float(np.min(scores)), float(np.max(scores))
    if high <= low:
        return np.full(len(scores), rho_max)
    return rho_min + (rho_max - rho_min) * (scores - low) / (high - low)


def neuron_masks(weights: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """``(L, d)`` 0/1 masks keeping, per layer, the ``ceil(rho_l d)`` input dimensions with the largest
    column norms of the layer's probe ``weights[l]`` ``(d, d)``."""
    layers, dim = weights.shape[0], weights.shape[2]
    masks = np.zeros((layers, dim), dtype=np.float32)
    for layer in range(layers):
        importance = np.linalg.norm(weights[layer], axis=0)
        keep = max(1, math.ceil(ratios[layer] * dim - 1e-9))
        masks[layer, np.argsort(-importance, kind="stable")[:keep]] = 1.0
    return masks


class SparseLayerFusion(torch.nn.Module):
    """``e = sum_l selected_l w_l W_l (f_l(m_l) * mask_l) + b`` over layers ``1..L`` (``f_l``: identity or
    LayerNorm without affine). Fresh: only the last layer, full masks, identity probe, ``w = 1``,
    ``b = 0``: the frozen model's mean pooling."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.probes = torch.nn.Parameter(torch.eye(dim).repeat(layers, 1, 1))
        self.layer_weights = torch.nn.Parameter(torch.zeros(layers))
        self.bias = torch.nn.Parameter(torch.zeros(dim))
        self.register_buffer("masks", torch.ones(layers, dim))
        self.register_buffer("selected", torch.zeros(layers))
        self.register_buffer("normalized", torch.zeros(layers))
        self.register_buffer("scores", torch.full((layers,), float("nan")))
        with torch.no_grad():
            self.selected[-1] = 1.0
            self.layer_weights[-1] = 1.0

    def configure(self, probes: np.ndarray, normalized: np.ndarray, scores: np.ndarray, selected: np.ndarray,
                  masks: np.ndarray) -> None:
        """Start from the probing stage: the probes ``(L, d, d)``, which use LayerNorm, their scores,
        the selected layer indices (``w = 1 / |S|`` each) and the masks ``(L, d)``."""
        with torch.no_grad():
            self.probes.copy_(torch.as_tensor(probes))
            self.normalized.copy_(torch.as_tensor(normalized, dtype=torch.float32))
            self.scores.copy_(torch.as_tensor(scores, dtype=torch.float32))
            self.selected.zero_()
            self.selected[torch.as_tensor(selected)] = 1.0
            self.layer_weights.copy_(self.selected / self.selected.sum())
            self.masks.copy_(torch.as_tensor(masks))

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = states[:, 1:]
        x = torch.where(self.normalized[None, :, None].bool(), standardise(x), x) * self.masks
        projected = torch.einsum("bli,loi->blo", x, self.probes)
        return torch.einsum("l,bld->bd", self.layer_weights * self.selected, projected) + self.bias
