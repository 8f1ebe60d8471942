"""Sharpness-Aware Minimization in the loop: the step uses the gradient at the perturbed weights."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from embedlab_train.loop import Trainer


def test_sam_gradient_is_taken_at_the_worst_nearby_weights_and_the_weights_are_restored():
    weights = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    target = torch.tensor([0.0, 1.0, 2.0])

    def loss_at(w: torch.Tensor) -> torch.Tensor:
        return ((w - target) ** 4).sum()

    fake = SimpleNamespace(optimizer=torch.optim.SGD([weights], lr=0.1), settings=SimpleNamespace(sam_rho=0.05),
                           batch_loss=lambda rows, negatives: loss_at(weights))
    loss_at(weights).backward()
    gradient = weights.grad.clone()
    Trainer._sharpness_aware_gradients(fake, None, None)
    shifted = (weights.detach() + 0.05 * gradient / gradient.norm()).requires_grad_()
    loss_at(shifted).backward()
    torch.testing.assert_close(weights.grad, shifted.grad)
    torch.testing.assert_close(weights.detach(), torch.tensor([1.0, -2.0, 0.5]))
    assert not torch.allclose(weights.grad, gradient)
