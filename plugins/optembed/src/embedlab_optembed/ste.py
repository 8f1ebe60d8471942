"""OptEmbed's hard threshold with its straight-through gradient (the official ``BinaryStep``)."""

from __future__ import annotations

import torch


class _BinaryStep(torch.autograd.Function):
    """Forward ``1[z > 0]``; backward multiplies the incoming gradient by ``2 - 4|z|`` for
    ``|z| <= 0.4``, by ``0.4`` for ``0.4 < |z| <= 1`` and by 0 beyond (a piecewise-linear
    surrogate of the step's derivative)."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        return (z > 0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (z,) = ctx.saved_tensors
        magnitude = z.abs()
        scale = torch.where(magnitude <= 0.4, 2 - 4 * magnitude,
                            torch.where(magnitude <= 1, torch.full_like(z, 0.4), torch.zeros_like(z)))
        return grad * scale


def binary_step(z: torch.Tensor) -> torch.Tensor:
    """``1[z > 0]`` with OptEmbed's straight-through gradient."""
    return _BinaryStep.apply(z)
