"""Intra-feature compression by low precision: INT8/INT16 (fixed scale) and ALPT (learned scales).

Both are *low-precision training* as in the benchmark's code: the table only ever holds values on
its integer grid. After every optimiser step the rows the batch touched are put back on the grid by
stochastic rounding (``floor(w / scale + u)``, ``u ~ U[0, 1)``) and clipped to the integer range;
the optimiser's moments stay float32 (training memory is not what is compared). Served bytes: the
integer codes, plus ALPT's learned per-row scales (INT8/INT16's one fixed scale is a configuration
constant, not counted, like a hash seed). Precision caps the ratio at 4x (8 bits) or 2x (16 bits), less with
ALPT's per-row scale.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch

from embedlab_tables.method import Plan, RatioConfig, TableMethod
from embedlab_tables.schema import FLOAT, TableSchema
from embedlab_tables.table import EmbeddingTable, OptimizerGroup, default_init_scale, generator

_v = attrs.validators


def stochastic_round(x: torch.Tensor, low: int, high: int, gen: torch.Generator) -> torch.Tensor:
    """``floor(x + u)`` clipped to ``[low, high]``; unbiased within the range."""
    return torch.floor(x + torch.rand(x.shape, generator=gen)).clamp_(low, high)


class QuantizedTable(EmbeddingTable):
    """A table of ``bits``-bit integers times one fixed ``scale`` (``middle`` = 0: symmetric)."""

    def __init__(self, schema: TableSchema, bits: int, scale: float, seed: int) -> None:
        super().__init__(schema)
        self.bits, self.scale = bits, scale
        self.low, self.high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        self.gen = torch.Generator().manual_seed(seed + 601)
        init = default_init_scale(schema)
        values = torch.rand(schema.n_features, schema.dim, generator=generator(seed)) * 2 * init - init
        self.sparse_table("weight", torch.nn.Parameter(
            stochastic_round(values / scale, self.low, self.high, self.gen) * scale))
        self._touched: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._touched = ids
        return self.lookup(self.weight, ids)

    def after_step(self, step: int) -> None:
        if self._touched is None:
            return
        rows = torch.unique(self._touched)
        self._touched = None
        with torch.no_grad():
            self.weight[rows] = stochastic_round(self.weight[rows] / self.scale, self.low, self.high,
                                                 self.gen) * self.scale

    def codes(self) -> np.ndarray:
        dtype = np.int8 if self.bits == 8 else np.int16
        return np.rint(self.weight.detach().numpy() / self.scale).astype(dtype)

    def storage(self) -> dict[str, np.ndarray]:
        return {"codes": self.codes()}  # the fixed scale is a config constant, like a hash seed


class _Fixed(TableMethod):
    """INT8/INT16 low-precision training with a fixed scale (the benchmark's ``quantize``)."""

    family = "intra-feature, quantisation"
    bits = 8

    @attrs.frozen
    class Config(RatioConfig):
        scale: float | None = attrs.field(default=None, validator=_v.optional(_v.gt(0)))

    def _scale(self) -> float:
        return self.config.scale if self.config.scale is not None else 2.0 ** -(self.bits - 1)

    def plan(self, schema: TableSchema) -> Plan:
        nbytes = schema.n_features * schema.dim * self.bits // 8
        self.check_fits(schema, nbytes, f"{self.bits}-bit codes")
        return {"bits": self.bits, "scale": self._scale(), "bytes": nbytes}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return QuantizedTable(schema, plan["bits"], plan["scale"], seed)


class Int8(_Fixed):
    """INT8 low-precision training (``scale`` default 2**-7: codes cover [-1, 1))."""

    name = "int8"
    bits = 8


class Int16(_Fixed):
    """INT16 low-precision training (``scale`` default 2**-15: codes cover [-1, 1))."""

    name = "int16"
    bits = 16


class ALPTTable(QuantizedTable):
    """Low-precision rows with one learned scale each (step-size gradient, scaled as in the benchmark)."""

    def __init__(self, schema: TableSchema, bits: int, init_scale: float, scale_lr: float, seed: int) -> None:
        super().__init__(schema, bits, init_scale, seed)
        self.scales = torch.nn.Parameter(torch.full((schema.n_features, 1), float(init_scale)))
        self.scale_optimizer = torch.optim.SparseAdam([self.scales], lr=scale_lr)
        self._lookups = 0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._lookups = ids.shape[0]
        return super().forward(ids)

    def optimizer_groups(self):  # type: ignore[no-untyped-def]
        return [OptimizerGroup([self.scales], "none")]

    def after_step(self, step: int) -> None:
        grad = self.weight.grad
        if self._touched is None or grad is None:
            return
        self._touched = None
        grad = grad.coalesce()
        rows, upstream = grad.indices()[0], grad.values()
        with torch.no_grad():
            updated = self.weight[rows]
            scale = self.scales[rows]
            x = updated / scale
            q = torch.round(x)
            step_grad = torch.where(q < self.low, torch.full_like(x, self.low),
                                    torch.where(q > self.high, torch.full_like(x, self.high), q - x))
            factor = 1.0 / math.sqrt(self._lookups * self.dim * self.high)
            scale_grad = (upstream * step_grad).sum(dim=1, keepdim=True) * factor
        self.scales.grad = torch.sparse_coo_tensor(rows.unsqueeze(0), scale_grad, self.scales.shape,
                                                   check_invariants=False)
        self.scale_optimizer.step()
        self.scales.grad = None
        with torch.no_grad():
            self.scales[rows] = self.scales[rows].clamp(min=1e-12)
            new = self.scales[rows]
            self.weight[rows] = stochastic_round(updated / new, self.low, self.high, self.gen) * new

    def codes(self) -> np.ndarray:
        dtype = np.int8 if self.bits == 8 else np.int16
        return np.rint(self.weight.detach().numpy() / self.scales.detach().numpy()).astype(dtype)

    def storage(self) -> dict[str, np.ndarray]:
        return {"codes": self.codes(), "scales": self.scales.detach().numpy().astype(np.float32)}


class _ALPT(TableMethod):
    """ALPT, Adaptive Low-Precision Training (Li et al., AAAI 2023): low-precision rows with a learned
    per-row step size. The scale's gradient is the step-size gradient of the quantiser on the
    updated rows, scaled by ``1 / sqrt(lookups * dim * (2**(bits-1) - 1))`` and applied with Adam
    (``scale_lr`` 2e-5, the benchmark's). Simplification: the benchmark recomputes the loss on the
    re-quantised rows to get that gradient; we reuse the step's own gradient (one backward pass)."""

    family = "intra-feature, quantisation"
    bits = 8

    @attrs.frozen
    class Config(RatioConfig):
        init_scale: float | None = attrs.field(default=None, validator=_v.optional(_v.gt(0)))
        scale_lr: float = attrs.field(default=2e-5, converter=float, validator=_v.gt(0))

    def plan(self, schema: TableSchema) -> Plan:
        nbytes = schema.n_features * (schema.dim * self.bits // 8 + FLOAT)
        self.check_fits(schema, nbytes, f"{self.bits}-bit codes and a float32 scale per row")
        init = self.config.init_scale if self.config.init_scale is not None else 2.0 ** -(self.bits - 1)
        return {"bits": self.bits, "init_scale": init, "bytes": nbytes}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return ALPTTable(schema, plan["bits"], plan["init_scale"], self.config.scale_lr, seed)


class ALPT8(_ALPT):
    """ALPT with 8-bit codes."""

    name = "alpt8"
    bits = 8


class ALPT16(_ALPT):
    """ALPT with 16-bit codes."""

    name = "alpt16"
    bits = 16
