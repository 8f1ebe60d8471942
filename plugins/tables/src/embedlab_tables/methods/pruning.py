"""Intra-feature compression by pruning single values: DeepLight, PEP, AutoSrh.

A pruned table is served as a sparse matrix, in the cheaper of the benchmark's two formats: CSR
(4-byte value + 4-byte column per kept value, a 4-byte row pointer per feature) or COO (value, row
and column: 12 bytes per kept value). The budget fixes how many values may be kept; at ratio 1 the
table stays dense and nothing is pruned.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from embedlab_tables.method import FittedTable, Plan, RatioConfig, TableMethod
from embedlab_tables.methods.dynamic import inherit_network
from embedlab_tables.models import CTRModel
from embedlab_tables.schema import FLOAT, BudgetError, TableSchema
from embedlab_tables.table import (
    EmbeddingTable,
    FullTable,
    OptimizerGroup,
    default_init_scale,
    generator,
    uniform_parameter,
)
from embedlab_tables.training import TableRun, TrainLog

_v = attrs.validators


def sparse_plan(schema: TableSchema, budget: int, who: str) -> Plan:
    """How many values a pruned table may keep, and in which format."""
    total = schema.n_features * schema.dim
    if schema.full_bytes <= budget:
        return {"format": "dense", "keep": total, "bytes": schema.full_bytes}
    csr = (budget - FLOAT * (schema.n_features + 1)) // 8
    coo = budget // 12
    keep, layout = (csr, "csr") if csr >= coo else (coo, "coo")
    if keep < 1:
        raise BudgetError(f"{who}: ratio leaves {budget} bytes, not enough for one stored value")
    keep = int(min(keep, total))
    nbytes = keep * 8 + FLOAT * (schema.n_features + 1) if layout == "csr" else keep * 12
    return {"format": layout, "keep": keep, "bytes": int(nbytes)}


def top_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """Boolean mask of the ``keep`` largest ``scores`` (ties to the lower flat index)."""
    flat = scores.reshape(-1)
    mask = torch.zeros(flat.numel(), dtype=torch.bool)
    if keep >= flat.numel():
        mask[:] = True
    elif keep > 0:
        mask[torch.topk(flat, keep, sorted=False).indices] = True
    return mask.view_as(scores)


class MaskedTable(EmbeddingTable):
    """A full-size table whose pruned values are held at zero by ``mask`` (served sparse)."""

    def __init__(self, schema: TableSchema, layout: str, keep: int, weight: torch.Tensor | None = None,
                 seed: int = 0) -> None:
        super().__init__(schema)
        self.layout, self.keep = layout, keep
        if weight is None:
            weight = uniform_parameter((schema.n_features, schema.dim), default_init_scale(schema), generator(seed))
        self.sparse_table("weight", torch.nn.Parameter(weight.detach().clone()))
        self.register_buffer("mask", torch.ones(schema.n_features, schema.dim, dtype=torch.bool))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(self.weight, ids) * self.mask[ids]

    def kept(self) -> int:
        return int(self.mask.sum())

    def prune_to(self, keep: int) -> None:
        """Keep the ``keep`` largest magnitudes among the values still kept; zero the others."""
        with torch.no_grad():
            scores = torch.where(self.mask, self.weight.abs(), torch.full_like(self.weight, -1.0))
            self.mask.copy_(top_mask(scores, keep))
            self.weight.mul_(self.mask)

    def finalize(self) -> None:
        if self.kept() > self.keep:
            self.prune_to(self.keep)
        with torch.no_grad():
            self.weight.mul_(self.mask)

    def storage(self) -> dict[str, np.ndarray]:
        values = (self.weight * self.mask).detach().numpy()
        if self.layout == "dense":
            return {"table": values.astype(np.float32)}
        rows, cols = np.nonzero(self.mask.numpy())
        data = values[rows, cols].astype(np.float32)
        if self.layout == "coo":
            return {"data": data, "row": rows.astype(np.int32), "col": cols.astype(np.int32)}
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.schema.n_features))])
        return {"data": data, "indices": cols.astype(np.int32), "indptr": indptr.astype(np.int32)}


class _PruningMethod(TableMethod):
    family = "intra-feature, pruning"

    def plan(self, schema: TableSchema) -> Plan:
        return sparse_plan(schema, self.budget(schema), self.name)

    def warm_up(self, run: TableRun) -> tuple[Plan, CTRModel, dict[str, TrainLog]]:
        """Plan, and the uncompressed model trained first (pruning starts from it); when the plan is
        dense (the budget holds the full table) that model is the result (``self.fitted`` is set)."""
        plan = self.plan(run.schema)
        warm = run.new_model(FullTable(run.schema, run.seed))
        logs = {"warmup": run.train(warm, label=f"{self.name} warm-up")}
        if plan["format"] == "dense":
            self.fitted = FittedTable(self, warm, plan, logs)
        return plan, warm, logs

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return MaskedTable(schema, plan["format"], plan["keep"], seed=seed)


# -- DeepLight ------------------------------------------------------------------------------------------------

class DeepLightTable(MaskedTable):
    """Magnitude pruning every ``interval`` steps to the sparsity ``P (1 - 0.99 ** (t * speed / 100))``."""

    def __init__(self, schema: TableSchema, layout: str, keep: int, weight: torch.Tensor, *, interval: int,
                 speed: float, deviation: float) -> None:
        super().__init__(schema, layout, keep, weight)
        self.interval, self.speed, self.deviation = interval, speed, deviation
        self.total = schema.n_features * schema.dim
        self.target = 1 - keep / self.total
        self.step = 0

    def sparsity(self, step: int) -> float:
        return self.target * (1 - 0.99 ** (step * self.speed / 100))

    def after_step(self, step: int) -> None:
        self.step = step
        if step % self.interval == 0:
            self.prune_to(int(round(self.total * (1 - self.sparsity(step)))))
        else:
            with torch.no_grad():
                self.weight.mul_(self.mask)

    def ready(self) -> bool:
        return 0.99 ** (self.step * self.speed / 100) <= self.deviation


class DeepLight(_PruningMethod):
    """DeepLight (Deng et al., WSDM 2021) as the benchmark runs it: warm up the full table, then keep
    training while pruning the smallest magnitudes every 10 steps to the sparsity
    ``P (1 - 0.99 ** (t / 100))``; checkpoints count once the schedule is within ``stop_deviation``
    (1e-3) of ``P``, and the final table is pruned to exactly ``P``.

    The benchmark's schedule needs about 69,000 steps to get within 1e-3; ``schedule_share`` compresses
    it (an adaptation to short runs) so that it gets there after that share of the pruning phase.
    """

    name = "deeplight"

    @attrs.frozen
    class Config(RatioConfig):
        interval: int = attrs.field(default=10, validator=[_v.instance_of(int), _v.ge(1)])
        stop_deviation: float = attrs.field(default=1e-3, converter=float, validator=[_v.gt(0), _v.lt(1)])
        schedule_share: float = attrs.field(default=0.5, converter=float, validator=[_v.gt(0), _v.le(1)])

    def fit(self, run: TableRun) -> FittedTable:
        schema = run.schema
        plan, warm, logs = self.warm_up(run)
        if self.fitted is not None and self.fitted.model is warm:
            return self.fitted
        steps = run.training.epochs * math.ceil(len(run.split("train")) / run.training.batch_size)
        needed = 100 * math.log(self.config.stop_deviation) / math.log(0.99)
        speed = needed / max(1.0, self.config.schedule_share * steps)
        table = DeepLightTable(schema, plan["format"], plan["keep"], warm.table.weight, interval=self.config.interval,
                               speed=speed, deviation=self.config.stop_deviation)
        model = run.new_model(table)
        inherit_network(warm, model)
        logs["prune"] = run.train(model, label=f"{self.name} pruning")
        table.finalize()
        self.fitted = FittedTable(self, model, plan, logs, {"kept": table.kept()})
        return self.fitted


# -- PEP ----------------------------------------------------------------------------------------------------------

class PEPTable(EmbeddingTable):
    """Soft thresholding ``sign(v) relu(|v| - sigmoid(s))`` with a learnable threshold per value."""

    def __init__(self, schema: TableSchema, keep: int, init: float, threshold_lr: float, l2: float,
                 seed: int) -> None:
        super().__init__(schema)
        self.keep, self.threshold_lr, self.l2 = keep, threshold_lr, l2
        self.sparse_table("weight", uniform_parameter((schema.n_features, schema.dim), default_init_scale(schema),
                                                      generator(seed)))
        self.register_buffer("initial", self.weight.detach().clone())
        self.s = torch.nn.Parameter(torch.full((schema.n_features, schema.dim), float(init)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        values = self.lookup(self.weight, ids)
        threshold = torch.sigmoid(F.embedding(ids, self.s))
        return torch.sign(values) * torch.relu(values.abs() - threshold)

    def kept(self) -> int:
        with torch.no_grad():
            return int((self.weight.abs() > torch.sigmoid(self.s)).sum())

    def ready(self) -> bool:
        return self.kept() <= self.keep

    def optimizer_groups(self):  # type: ignore[no-untyped-def]
        return [OptimizerGroup([self.s], "adam", self.threshold_lr, self.l2)]

    def mask(self) -> torch.Tensor:
        """Values that survive the thresholds; if more than ``keep`` survive, the ``keep`` largest margins."""
        with torch.no_grad():
            margin = self.weight.abs() - torch.sigmoid(self.s)
            survive = margin > 0
            if int(survive.sum()) <= self.keep:
                return survive
            return top_mask(torch.where(survive, margin, torch.full_like(margin, -1.0)), self.keep)


class PEP(_PruningMethod):
    """PEP, Plug-in Embedding Pruning (Liu et al., ICLR 2021): soft thresholds ``sigmoid(s)`` per value
    (``threshold_type="feature_dim"``, as the authors' Criteo script), trained with Adam and L2 on
    ``s`` (1e-5: this pull towards 0 is what raises the thresholds); the first state at or below the
    budget gives the mask, then the masked table retrains from its initial values (the authors'
    ``re_init=False``, a lottery ticket).

    The authors start ``s`` at -150 and train for many epochs; on short runs ``threshold_init`` -8 and
    ``threshold_lr`` 1e-2 get the thresholds to the budget (an adaptation). If they never do, the
    largest margins ``|v| - sigmoid(s)`` are kept (reported as ``reached_by_thresholds = False``).
    """

    name = "pep"

    @attrs.frozen
    class Config(RatioConfig):
        threshold_init: float = attrs.field(default=-8.0, converter=float)
        threshold_lr: float = attrs.field(default=1e-2, converter=float, validator=_v.gt(0))
        l2: float = attrs.field(default=1e-5, converter=float, validator=_v.ge(0))

    def fit(self, run: TableRun) -> FittedTable:
        schema = run.schema
        plan = self.plan(schema)
        if plan["format"] == "dense":
            return super().fit(run)
        c = self.config
        search_table = PEPTable(schema, plan["keep"], c.threshold_init, c.threshold_lr, c.l2, run.seed)
        search = run.new_model(search_table)
        logs = {"search": run.train(search, label=f"{self.name} search")}
        reached = search_table.ready()
        mask = search_table.mask()
        table = MaskedTable(schema, plan["format"], plan["keep"], search_table.initial * mask)
        table.mask.copy_(mask)
        model = run.new_model(table)
        logs["retrain"] = run.train(model, label=f"{self.name} retrain")
        table.finalize()
        self.fitted = FittedTable(self, model, plan, logs, {"reached_by_thresholds": reached, "kept": table.kept()})
        return self.fitted


# -- AutoSrh --------------------------------------------------------------------------------------------------------

def frequency_groups(schema: TableSchema, groups: int) -> np.ndarray:
    """Group of every feature: ``groups`` equal-size groups from most to least frequent."""
    order = schema.frequency_order()
    group = np.empty(schema.n_features, dtype=np.int64)
    group[order] = np.minimum(np.arange(schema.n_features) * groups // schema.n_features, groups - 1)
    return group


class AutoSrhTable(EmbeddingTable):
    """``v * alpha[group(v), :]``: a soft selection weight per (frequency group, dimension)."""

    def __init__(self, schema: TableSchema, weight: torch.Tensor, groups: np.ndarray, n_groups: int) -> None:
        super().__init__(schema)
        self.sparse_table("weight", torch.nn.Parameter(weight.detach().clone()))
        self.register_buffer("group", torch.from_numpy(groups))
        self.alpha = torch.nn.Parameter(torch.ones(n_groups, schema.dim))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(self.weight, ids) * self.alpha[self.group[ids]]

    def optimizer_groups(self):  # type: ignore[no-untyped-def]
        return [OptimizerGroup([self.alpha], "none")]  # updated on validation batches by AutoSrh.fit


class AutoSrh(_PruningMethod):
    """AutoSrh (Kong et al., 2022) as in the benchmark's code: warm up the full table; learn a soft
    selection ``alpha`` per (frequency group, dimension) (``nsplit`` 6 groups, init 1, clipped to
    [0, 1]) on validation batches with L1 (``alpha_l1`` 1e-5) and SGD on its mean-normalised gradient
    (``alpha_lr`` 1e-3) while the table trains on the training batches; keep the largest
    ``|v * alpha|`` that fit the budget and fine-tune the pruned table.
    """

    name = "autosrh"

    @attrs.frozen
    class Config(RatioConfig):
        nsplit: int = attrs.field(default=6, validator=[_v.instance_of(int), _v.ge(1)])
        alpha_l1: float = attrs.field(default=1e-5, converter=float, validator=_v.ge(0))
        alpha_lr: float = attrs.field(default=1e-3, converter=float, validator=_v.gt(0))

    def fit(self, run: TableRun) -> FittedTable:
        schema = run.schema
        plan, warm, logs = self.warm_up(run)
        if self.fitted is not None and self.fitted.model is warm:
            return self.fitted
        c = self.config
        groups = frequency_groups(schema, c.nsplit)
        search_table = AutoSrhTable(schema, warm.table.weight, groups, c.nsplit)
        search = run.new_model(search_table)
        inherit_network(warm, search)
        valid = run.split("valid")
        loss_fn = torch.nn.BCEWithLogitsLoss()
        batch = run.training.batch_size
        rng = torch.Generator().manual_seed(run.seed + 503)

        def alpha_step(step: int) -> None:
            rows = torch.randint(0, len(valid), (min(batch, len(valid)),), generator=rng)
            search_table.alpha.grad = None
            loss = loss_fn(search(valid.ids[rows], valid.dense[rows]), valid.labels[rows])
            loss = loss + c.alpha_l1 * search_table.alpha.abs().sum()
            (grad,) = torch.autograd.grad(loss, [search_table.alpha])
            with torch.no_grad():
                grad = grad / (grad.abs().mean(dim=-1, keepdim=True) + 1e-8)
                search_table.alpha.sub_(c.alpha_lr * grad).clamp_(0.0, 1.0)

        logs["search"] = run.train(search, step_hook=alpha_step, label=f"{self.name} search")
        with torch.no_grad():
            scaled = search_table.weight * search_table.alpha[search_table.group]
        table = MaskedTable(schema, plan["format"], plan["keep"], scaled)
        table.prune_to(plan["keep"])
        model = run.new_model(table)
        inherit_network(search, model)
        logs["retrain"] = run.train(model, label=f"{self.name} retrain")
        table.finalize()
        alpha = search_table.alpha.detach().numpy()
        self.fitted = FittedTable(self, model, plan, logs, {"alpha": alpha.tolist(), "kept": table.kept()})
        return self.fitted
