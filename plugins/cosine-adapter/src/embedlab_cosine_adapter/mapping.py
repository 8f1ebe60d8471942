"""The Cosine Adapter's network and its monotonic cosine -> relevance-logit mapping (torch, float64).

Reconstructed from the paper's description (no public code): a small MLP ``g`` reads the unit-norm
query embedding and predicts the parameters of a monotonic mapping ``h`` of the raw cosine ``c``;
``p(rel | q, d) = sigmoid(h)``. With ``u = clip((c + 1) / 2, 1e-6, 1)`` (the cosine moved to
``(0, 1]``) and the training candidates' mean ``m`` and standard deviation ``s`` of ``u``::

    h(c) = a(q) * (u**p - m**p) / (p * m**(p - 1) * s) + b(q)

``a = softplus(.) + 1e-3 > 0``; ``p = 1`` (family ``linear``), ``p = 1/2`` (``sqrt``) or a
per-query ``p = softplus(.) + 0.05`` (``power``). The fraction is ``u**p`` standardised by its
tangent at ``m``, so all families start on the same scale (for ``linear`` it is the z-score of
``u``). ``h`` is non-decreasing in ``c`` (strictly increasing for ``c > -1 + 2e-6`` in exact arithmetic) whatever the
network outputs, so a query's ranking never changes: only where it is cut.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

FAMILIES = ("linear", "sqrt", "power")
MIN_SLOPE = 1e-3
MIN_POWER = 0.05
MIN_UNIT = 1e-6
WEIGHT_NAMES = ("w1", "b1", "w2", "b2")


def outputs(family: str) -> int:
    """Number of mapping parameters the network predicts: slope, offset (and power)."""
    return 3 if family == "power" else 2


def _softplus_inverse(y: float) -> float:
    return math.log(math.expm1(y))


def init_weights(dim: int, hidden: int, family: str, prior: float,
                 generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Seeded initial weights: He-initialised hidden layer, a near-zero output layer whose biases
    start every query at slope 1, offset ``logit(prior)`` and power 1."""
    w1 = torch.randn(hidden, dim, generator=generator, dtype=torch.float64) * math.sqrt(2.0 / dim)
    w2 = torch.randn(outputs(family), hidden, generator=generator, dtype=torch.float64) * 0.01
    bias = [_softplus_inverse(1.0 - MIN_SLOPE), math.log(prior / (1.0 - prior))]
    if family == "power":
        bias.append(_softplus_inverse(1.0 - MIN_POWER))
    return {"w1": w1, "b1": torch.zeros(hidden, dtype=torch.float64), "w2": w2,
            "b2": torch.tensor(bias, dtype=torch.float64)}


def mapping_parameters(weights: dict[str, torch.Tensor], family: str,
                       queries: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(slope, offset, power)`` per query from unit-norm query embeddings ``(n, d)``."""
    hidden = torch.relu(queries @ weights["w1"].T + weights["b1"])
    out = hidden @ weights["w2"].T + weights["b2"]
    slope = F.softplus(out[:, 0]) + MIN_SLOPE
    if family == "power":
        power = F.softplus(out[:, 2]) + MIN_POWER
    else:
        power = torch.full_like(slope, 1.0 if family == "linear" else 0.5)
    return slope, out[:, 1], power


def monotone_logits(cosines: torch.Tensor, slope: torch.Tensor, offset: torch.Tensor,
                    power: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """``h(c)`` for an ``(n, k)`` cosine matrix (finite values) and per-query parameters ``(n,)``."""
    unit = torch.clamp((cosines + 1.0) / 2.0, MIN_UNIT, 1.0)
    p = power[:, None]
    scale = p * mean ** (p - 1.0) * std
    return slope[:, None] * (unit ** p - mean ** p) / scale + offset[:, None]


def logits(weights: dict[str, torch.Tensor], family: str, queries: torch.Tensor, cosines: torch.Tensor,
           mean: float, std: float) -> torch.Tensor:
    """Relevance logits of every candidate: the network's mapping applied to its cosine."""
    return monotone_logits(cosines, *mapping_parameters(weights, family, queries), mean, std)
