"""The mapping is monotonic in the cosine for any network output, and starts where documented."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from embedlab_cosine_adapter.mapping import FAMILIES, init_weights, logits, mapping_parameters


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("scale", [1.0, 5.0])
def test_mapping_is_monotonic_for_random_parameters(family, seed, scale):
    """Non-decreasing always; strictly increasing where float64 resolves the steps: large random
    exponents flatten ``u**p`` near c = -1 below rounding, so the strict check uses moderate
    weights and cosines above -0.5 (first-stage cosines of a real encoder are far above)."""
    generator = torch.Generator().manual_seed(seed)
    weights = init_weights(16, 8, family, 0.1, generator)
    weights = {k: v + scale * torch.randn(v.shape, generator=generator, dtype=torch.float64)
               for k, v in weights.items()}
    queries = torch.randn(50, 16, generator=generator, dtype=torch.float64)
    cosines = torch.linspace(-1.0, 1.0, 401, dtype=torch.float64).repeat(50, 1)
    h = logits(weights, family, queries, cosines, mean=0.6, std=0.1)
    steps = torch.diff(h, dim=1)
    assert bool((steps >= 0).all())
    strict = cosines[:, 1:] > -0.5
    if scale == 1.0:
        assert bool((steps[strict] > 0).all())
    slope, _, power = mapping_parameters(weights, family, queries)
    assert bool((slope > 0).all()) and bool((power > 0).all())
    if family == "power":
        assert float(power.std()) > 0  # the exponent really depends on the query


@pytest.mark.parametrize("family", FAMILIES)
def test_initial_mapping_is_the_prior_at_the_mean_cosine(family):
    weights = init_weights(8, 4, family, 0.05, torch.Generator().manual_seed(0))
    weights["w2"] = torch.zeros_like(weights["w2"])
    queries = torch.randn(3, 8, dtype=torch.float64)
    mean, std = 0.7, 0.05
    at_mean = torch.full((3, 1), 2 * mean - 1, dtype=torch.float64)
    one_std = torch.full((3, 1), 2 * (mean + 1e-6) - 1, dtype=torch.float64)
    h0 = logits(weights, family, queries, at_mean, mean, std)
    np.testing.assert_allclose(h0.numpy(), math.log(0.05 / 0.95), rtol=1e-9)
    # slope 1 on the standardised scale: d h / d u = 1 / std at the mean, for every family
    h1 = logits(weights, family, queries, one_std, mean, std)
    np.testing.assert_allclose(((h1 - h0) / 1e-6).numpy(), 1 / std, rtol=1e-4)
