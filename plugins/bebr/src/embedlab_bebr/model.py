"""The recurrent binarisation network (PyTorch), after the paper and its official ``RBE_NORM`` head.

Loop 0 binarises a transform of the input, ``s_0 = sign(enc_0(x))``; loop ``t`` >= 1 decodes the
composite so far, ``c_{t-1} = sum_{i<t} 2**-i s_i``, back to the input space, and binarises a
transform of what is left: ``s_t = sign(enc_t(x - dec_{t-1}(c_{t-1})))``. The code is the
``u + 1`` sign vectors; the vector they stand for is the composite ``c_u``. Signs use a
straight-through estimator (gradient passed where the pre-activation is within [-1, 1]).
A final *linear* decoder maps ``c_u`` back to the input space (``decode``; linear so that
asymmetric scoring is an exact table look-up too).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn


class _SignSTE(torch.autograd.Function):
    """+1 where the input is > 0, else -1; straight-through gradient clipped to |x| <= 1."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x > 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarise(x: torch.Tensor) -> torch.Tensor:
    """Signs in {-1, +1} with the straight-through gradient."""
    return _SignSTE.apply(x)


class ResidualMLP(nn.Module):
    """``Linear(x) + MLP(x)``: a linear shortcut plus Linear-BatchNorm-ReLU blocks; with no hidden
    sizes, just the linear map."""

    def __init__(self, n_in: int, n_out: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.shortcut = nn.Linear(n_in, n_out)
        layers: list[nn.Module] = []
        width = n_in
        for size in hidden:
            layers += [nn.Linear(width, size), nn.BatchNorm1d(size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers, nn.Linear(width, n_out)) if hidden else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shortcut(x)
        return out if self.body is None else out + self.body(x)


class RecurrentBinariser(nn.Module):
    """``levels`` loops of ``code_dim`` signs each for ``input_dim``-dimensional inputs."""

    def __init__(self, input_dim: int, code_dim: int, levels: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.levels = levels
        self.register_buffer("weights", 0.5 ** torch.arange(levels, dtype=torch.float32))
        self.encoders = nn.ModuleList(ResidualMLP(input_dim, code_dim, hidden) for _ in range(levels))
        self.decoders = nn.ModuleList(ResidualMLP(code_dim, input_dim, hidden) for _ in range(levels - 1))
        self.output = nn.Linear(code_dim, input_dim)

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Signs of every loop and the composite after every loop (the last one is the code's)."""
        signs = [binarise(self.encoders[0](x))]
        composites = [signs[0]]
        for t in range(1, self.levels):
            residual = x - self.decoders[t - 1](composites[-1])
            signs.append(binarise(self.encoders[t](residual)))
            composites.append(composites[-1] + self.weights[t] * signs[-1])
        return signs, composites

    def reconstructions(self, composites: list[torch.Tensor]) -> list[torch.Tensor]:
        """Input-space reconstruction after every loop (the last by the linear output decoder)."""
        return [*(dec(c) for dec, c in zip(self.decoders, composites)), self.output(composites[-1])]
