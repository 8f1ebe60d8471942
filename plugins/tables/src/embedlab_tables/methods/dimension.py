"""Intra-feature compression by smaller dimensions: MDE (by field size) and AutoDim (searched).

Each field ``f`` gets ``d_f <= dim`` dimensions and a learned ``d_f x dim`` projection back to the
model's dimension. A dimension cannot go below 1, so these methods stop at about ``dim``x.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from embedlab_tables.method import FittedTable, Plan, RatioConfig, TableMethod
from embedlab_tables.schema import FLOAT, BudgetError, TableSchema
from embedlab_tables.table import (
    EmbeddingTable,
    FieldTable,
    FieldwiseTable,
    OptimizerGroup,
    default_init_scale,
    generator,
    uniform_parameter,
)
from embedlab_tables.training import TableRun

_v = attrs.validators


class ProjectedField(FieldTable):
    """A ``vocab x width`` table and, when ``width < dim``, a ``width x dim`` projection (+ bias)."""

    def __init__(self, vocab: int, width: int, dim: int, scale: float, gen: torch.Generator, bias: bool) -> None:
        super().__init__()
        self.weight = uniform_parameter((vocab, width), scale, gen)
        self.projection = (torch.nn.Linear(width, dim, bias=bias) if width < dim or bias else None)
        if self.projection is not None:
            torch.nn.init.xavier_uniform_(self.projection.weight, generator=gen)
            if self.projection.bias is not None:
                torch.nn.init.zeros_(self.projection.bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = F.embedding(ids, self.weight, sparse=True)
        return rows if self.projection is None else self.projection(rows)


def projected_bytes(vocab: int, width: int, dim: int, bias: bool) -> int:
    projection = width * dim + (dim if bias else 0) if (width < dim or bias) else 0
    return (vocab * width + projection) * FLOAT


class MDE(TableMethod):
    """Mixed-dimension embeddings (Ginart et al., ISIT 2021), sized as the DLRM solver the benchmark
    uses: ``d_f = lambda * v_f ** -alpha`` (the smallest field keeps ``dim``), rounded to a power of two;
    ``alpha`` is the smallest that fits the budget (0 = uncompressed)."""

    name = "mde"
    family = "intra-feature, dimension reduction"

    @attrs.frozen
    class Config(RatioConfig):
        round_dim: bool = attrs.field(default=True, validator=_v.instance_of(bool))

    def dims(self, schema: TableSchema, alpha: float) -> list[int]:
        vocab = np.asarray(schema.vocab_sizes, dtype=np.float64)
        scale = schema.dim * vocab.min() ** alpha
        d = np.maximum(np.round(scale * vocab ** -alpha), 1)
        if self.config.round_dim:
            d = 2 ** np.round(np.log2(d))
        return [int(x) for x in np.minimum(d, schema.dim)]

    def _bytes(self, schema: TableSchema, dims: list[int]) -> int:
        return sum(projected_bytes(v, d, schema.dim, False) for v, d in zip(schema.vocab_sizes, dims))

    def plan(self, schema: TableSchema) -> Plan:
        budget = self.budget(schema)
        if self._bytes(schema, self.dims(schema, 0.0)) <= budget:
            return {"dims": self.dims(schema, 0.0), "alpha": 0.0, "bytes": self._bytes(schema, self.dims(schema, 0.0))}
        high = 16.0
        if self._bytes(schema, self.dims(schema, high)) > budget:
            least = self._bytes(schema, self.dims(schema, high))
            raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} is out of reach; one dimension per large "
                              f"field still needs {least} bytes (about {schema.full_bytes / least:.3g}x)")
        low = 0.0
        for _ in range(50):
            mid = (low + high) / 2
            low, high = (low, mid) if self._bytes(schema, self.dims(schema, mid)) <= budget else (mid, high)
        dims = self.dims(schema, high)
        return {"dims": dims, "alpha": high, "bytes": self._bytes(schema, dims)}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        gen, scale = generator(seed), default_init_scale(schema)
        return FieldwiseTable(schema, [ProjectedField(v, d, schema.dim, scale, gen, False)
                                       for v, d in zip(schema.vocab_sizes, plan["dims"])])


# -- AutoDim ------------------------------------------------------------------------------------------------

def candidates(dim: int) -> list[int]:
    """2, 4, 8, ... up to ``dim`` (the last is ``dim`` itself), as the benchmark's AutoDim."""
    out = [2]
    while out[-1] < dim:
        out.append(2 * out[-1])
    out[-1] = dim
    return out


class AutoDimSearchTable(EmbeddingTable):
    """AutoDim's search space: one table per candidate dimension, per-field linear maps to ``dim``
    with batch norm, mixed by Gumbel-softmax weights of the architecture parameters ``alpha``."""

    def __init__(self, schema: TableSchema, dims: list[int], alpha_lr: float, batch_size: int, seed: int) -> None:
        super().__init__(schema)
        gen, scale = generator(seed), default_init_scale(schema)
        self.dims_list, self.alpha_lr = dims, alpha_lr
        fields, dim = schema.n_fields, schema.dim
        for i, d in enumerate(dims):
            self.sparse_table(f"table{i}", uniform_parameter((schema.n_features, d), scale, gen))
            self.register_parameter(f"weight{i}", torch.nn.Parameter(
                torch.randn(fields, d, dim, generator=gen) * math.sqrt(2.0 / (d + dim))))
            self.register_parameter(f"bias{i}", torch.nn.Parameter(torch.zeros(fields, 1, dim)))
        self.norms = torch.nn.ModuleList([torch.nn.BatchNorm1d(dim, affine=False) for _ in dims])
        self.alpha = uniform_parameter((fields, len(dims)), scale, gen)
        self.decay = 0.00005 / 2000 * batch_size
        self.steps = 0
        self.gumbel = torch.Generator().manual_seed(seed + 401)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch = ids.shape[0]
        mixed = []
        for i, _ in enumerate(self.dims_list):
            rows = self.lookup(getattr(self, f"table{i}"), ids).transpose(0, 1)  # (fields, batch, d)
            out = torch.bmm(rows, getattr(self, f"weight{i}")) + getattr(self, f"bias{i}")
            out = self.norms[i](out.transpose(0, 1).reshape(batch * self.schema.n_fields, -1))
            mixed.append(out.view(batch, self.schema.n_fields, -1))
        stacked = torch.stack(mixed, dim=-1)  # (batch, fields, dim, candidates)
        logits = F.log_softmax(self.alpha, dim=1)
        if self.training:
            uniform = torch.rand(self.alpha.shape, generator=self.gumbel).clamp(1e-10, 1 - 1e-10)
            logits = logits - torch.log(-torch.log(uniform))
        weights = torch.softmax(logits / max(0.01, 1 - self.decay * self.steps), dim=1)
        return (stacked * weights[None, :, None, :]).sum(-1)

    def after_step(self, step: int) -> None:
        self.steps = step

    def optimizer_groups(self):  # type: ignore[no-untyped-def]
        return [OptimizerGroup([self.alpha], "sgd", self.alpha_lr)]


class AutoDim(TableMethod):
    """AutoDim (Zhao et al., WWW 2021) as the benchmark runs it: a DARTS-style search over candidate
    dimensions (2, 4, ..., dim) with first-order updates of ``alpha`` (SGD, ``alpha_lr`` 1e-3), then
    each field retrains with its most likely dimension, initialised from the search (the benchmark's
    ``reset_retrain=0``).

    The paper has no memory budget. Ours (an addition): when the chosen dimensions exceed the
    budget, the field whose next smaller candidate loses the least ``alpha`` per byte saved steps
    down until it fits. At ratio 1 the dimensions are the search's own.
    """

    name = "autodim"
    family = "intra-feature, dimension reduction"

    @attrs.frozen
    class Config(RatioConfig):
        alpha_lr: float = attrs.field(default=1e-3, converter=float, validator=_v.gt(0))

    def plan(self, schema: TableSchema) -> Plan:
        least = sum(projected_bytes(v, 2, schema.dim, True) for v in schema.vocab_sizes)
        self.check_fits(schema, least, "two dimensions per feature")
        return {"dims": None, "bytes": None}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        gen, scale = generator(seed), default_init_scale(schema)
        return FieldwiseTable(schema, [ProjectedField(v, d, schema.dim, scale, gen, True)
                                       for v, d in zip(schema.vocab_sizes, plan["dims"])])

    def choose(self, schema: TableSchema, alpha: np.ndarray) -> list[int]:
        """Dimensions from the architecture weights, stepped down to the budget."""
        dims = candidates(schema.dim)
        choice = alpha.argmax(1).tolist()
        budget = self.budget(schema)

        def total() -> int:
            return sum(projected_bytes(v, dims[c], schema.dim, True) for v, c in zip(schema.vocab_sizes, choice))

        while total() > budget:
            best, best_cost = -1, math.inf
            for f, c in enumerate(choice):
                if c == 0:
                    continue
                saved = (schema.vocab_sizes[f] + schema.dim) * (dims[c] - dims[c - 1])
                cost = (alpha[f, c] - alpha[f, c - 1]) / saved
                if cost < best_cost:
                    best, best_cost = f, cost
            if best < 0:
                raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} is out of reach at two dimensions")
            choice[best] -= 1
        return [dims[c] for c in choice]

    def fit(self, run: TableRun) -> FittedTable:
        schema = run.schema
        self.plan(schema)
        dims = candidates(schema.dim)
        search = AutoDimSearchTable(schema, dims, self.config.alpha_lr, run.training.batch_size, run.seed)
        searched = run.new_model(search)
        logs = {"search": run.train(searched, label=f"{self.name} search")}
        alpha = search.alpha.detach().numpy()
        chosen = self.choose(schema, alpha)
        plan = {"dims": chosen, "bytes": sum(projected_bytes(v, d, schema.dim, True)
                                             for v, d in zip(schema.vocab_sizes, chosen))}
        table = self.build(schema, plan, run.seed)
        with torch.no_grad():  # initialise from the search (reset_retrain = 0)
            offsets = schema.offsets
            for f, field in enumerate(table.fields):
                i = dims.index(chosen[f])
                field.weight.copy_(getattr(search, f"table{i}")[offsets[f]:offsets[f + 1]])
                field.projection.weight.copy_(getattr(search, f"weight{i}")[f].T)
                field.projection.bias.copy_(getattr(search, f"bias{i}")[f, 0])
        model = run.new_model(table)
        from embedlab_tables.methods.dynamic import inherit_network

        inherit_network(searched, model)
        logs["retrain"] = run.train(model, label=f"{self.name} retrain")
        self.fitted = FittedTable(self, model, plan, logs, {"alpha": alpha.tolist()})
        return self.fitted
