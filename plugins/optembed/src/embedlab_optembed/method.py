"""OptEmbed's three stages on embedlab-tables' harness: supernet, evolutionary search, retrain."""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch
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

from embedlab_optembed.ste import binary_step

_v = attrs.validators


def prefix_masks(dim: int) -> torch.Tensor:
    """Row ``i`` keeps the first ``i + 1`` coordinates: ``(dim, dim)`` of 0/1."""
    return torch.tril(torch.ones(dim, dim))


class SupernetTable(EmbeddingTable):
    """One full table, per-field thresholds ``t`` (init 0) and prefix masks.

    A feature is kept while ``||e_x||_1 - t_field > 0`` (zeroed otherwise, the official "zero" mode);
    in training every (row, field) keeps a uniformly drawn prefix of ``1..dim`` coordinates; with
    ``candidate`` set (the search), field ``f`` keeps ``candidate[f]`` coordinates."""

    def __init__(self, schema: TableSchema, alpha: float, threshold_lr: float, seed: int) -> None:
        super().__init__(schema)
        self.alpha, self.threshold_lr = alpha, threshold_lr
        self.sparse_table("weight", uniform_parameter((schema.n_features, schema.dim), default_init_scale(schema),
                                                      generator(seed)))
        self.threshold = torch.nn.Parameter(torch.zeros(schema.n_fields, 1))
        self.register_buffer("masks", prefix_masks(schema.dim), persistent=False)
        self.sampler = torch.Generator().manual_seed(seed + 809)
        self.candidate: torch.Tensor | None = None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = self.lookup(self.weight, ids)  # (batch, fields, dim)
        keep = binary_step(rows.abs().sum(-1, keepdim=True) - self.threshold)
        out = keep * rows
        if self.training:
            drawn = torch.randint(0, self.dim, ids.shape, generator=self.sampler)
            out = out * self.masks[drawn]
        elif self.candidate is not None:
            out = out * self.masks[self.candidate - 1]
        return out

    def penalty(self) -> torch.Tensor:
        return self.alpha * torch.exp(-self.threshold).sum()

    def optimizer_groups(self) -> list[OptimizerGroup]:
        return [OptimizerGroup([self.threshold], "adam", self.threshold_lr)]

    def kept(self) -> np.ndarray:
        """Features whose row norm exceeds their field's threshold."""
        with torch.no_grad():
            norms = self.weight.abs().sum(1)
            thresholds = self.threshold[:, 0][torch.from_numpy(self.schema.field_of())]
            return (norms - thresholds > 0).numpy()


class OptEmbedField(FieldTable):
    """A retrained field: ``dims`` coordinates per kept feature (zeros after them), pruned features
    embed as zeros. Served: the kept rows, and for a field with pruned features a bitmap of the kept
    ids with an int32 rank every 64 ids (row of id x = kept ids before x)."""

    def __init__(self, vocab: int, dims: int, dim: int, scale: float, gen: torch.Generator) -> None:
        super().__init__()
        self.dims, self.dim = dims, dim
        self.weight = uniform_parameter((vocab, dims), scale, gen)
        self.register_buffer("keep", torch.ones(vocab, 1))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = torch.nn.functional.embedding(ids, self.weight, sparse=True) * self.keep[ids]
        return torch.nn.functional.pad(rows, (0, self.dim - self.dims))

    def storage(self) -> dict[str, np.ndarray]:
        kept = self.keep[:, 0].numpy() > 0
        out = {"rows": self.weight.detach().numpy()[kept].astype(np.float32)}
        if not kept.all():
            out["bitmap"] = np.packbits(kept)
            out["rank"] = np.concatenate([[0], np.cumsum(kept)])[::64].astype(np.int32)
        return out


def served_bytes(vocab_kept: list[tuple[int, int]], dims: list[int]) -> int:
    """Bytes of retrained fields with ``(vocabulary, kept)`` features and ``dims`` coordinates."""
    total = 0
    for (vocab, kept), d in zip(vocab_kept, dims):
        total += kept * d * FLOAT
        if kept < vocab:
            total += math.ceil(vocab / 8) + 4 * len(range(0, vocab + 1, 64))
    return total


class OptEmbed(TableMethod):
    """OptEmbed: learnable-threshold feature pruning and searched per-field dimensions.

    Defaults follow the official code (``supernet.py`` / ``evolution.py``): L1 norm, field-level
    thresholds initialised at 0 and trained with Adam (``threshold_lr`` 3e-4), regulariser
    ``alpha * sum(exp(-t))`` (``alpha`` 3e-4), pruned features zeroed; search population of
    ``mutations`` (10, probability 0.1) + ``crossovers`` (10) candidates for ``iterations`` rounds
    (30), fitness = validation AUC; the retrain starts from the supernet's initial weights.

    The paper has no memory budget. Ours (an addition): a candidate whose retrained table would
    exceed the ratio's budget is not evaluated (fitness -inf); when no candidate fits, BudgetError."""

    name = "optembed"
    family = "intra-feature, dimension search + pruning"

    @attrs.frozen
    class Config(RatioConfig):
        alpha: float = attrs.field(default=3e-4, converter=float, validator=_v.ge(0))
        threshold_lr: float = attrs.field(default=3e-4, converter=float, validator=_v.gt(0))
        iterations: int = attrs.field(default=30, validator=[_v.instance_of(int), _v.ge(1)])
        mutations: int = attrs.field(default=10, validator=[_v.instance_of(int), _v.ge(1)])
        crossovers: int = attrs.field(default=10, validator=[_v.instance_of(int), _v.ge(0)])
        mutation_probability: float = attrs.field(default=0.1, converter=float, validator=[_v.gt(0), _v.le(1)])

    def plan(self, schema: TableSchema) -> Plan:
        self.budget(schema)  # a ratio below one row fails before training
        return {"dims": None, "bytes": None}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        gen, scale = generator(seed), default_init_scale(schema)
        return FieldwiseTable(schema, [OptEmbedField(v, d, schema.dim, scale, gen)
                                       for v, d in zip(schema.vocab_sizes, plan["dims"])])

    def fit(self, run: TableRun) -> FittedTable:
        schema, c = run.schema, self.config
        self.plan(schema)
        supernet = SupernetTable(schema, c.alpha, c.threshold_lr, run.seed)
        model = run.new_model(supernet)
        logs = {"supernet": run.train(model, label=f"{self.name} supernet")}
        kept = supernet.kept()
        vocab_kept = [(v, int(kept[a:b].sum())) for v, a, b in
                      zip(schema.vocab_sizes, schema.offsets[:-1], schema.offsets[1:])]
        dims, fitness = self.search(run, model, supernet, vocab_kept)
        plan = {"dims": dims, "bytes": served_bytes(vocab_kept, dims), "kept": [k for _, k in vocab_kept],
                "search_valid_auc": fitness}
        table = self.build(schema, plan, run.seed)
        with torch.no_grad():  # retrain from the supernet's initial weights (its seed), pruned features off
            initial = uniform_parameter((schema.n_features, schema.dim), default_init_scale(schema),
                                        generator(run.seed))
            for f, field in enumerate(table.fields):
                a, b = schema.offsets[f], schema.offsets[f + 1]
                field.weight.copy_(initial[a:b, :dims[f]])
                field.keep.copy_(torch.from_numpy(kept[a:b].astype(np.float32))[:, None])
        retrained = run.new_model(table)
        logs["retrain"] = run.train(retrained, label=f"{self.name} retrain")
        self.fitted = FittedTable(self, retrained, plan, logs, {"pruned_features": int((~kept).sum())})
        return self.fitted

    def search(self, run: TableRun, model: torch.nn.Module, supernet: SupernetTable,
               vocab_kept: list[tuple[int, int]]) -> tuple[list[int], float]:
        """Evolutionary search of per-field dimensions (1..dim) by the supernet's validation AUC."""
        c, dim, fields = self.config, run.schema.dim, run.schema.n_fields
        budget = self.budget(run.schema)
        rng = np.random.default_rng(run.seed + 907)
        population = [rng.integers(1, dim + 1, fields) for _ in range(c.mutations + c.crossovers)]
        best: tuple[float, list[int]] = (-math.inf, [])
        seen: dict[tuple[int, ...], float] = {}

        def fitness(candidate: np.ndarray) -> float:
            key = tuple(int(d) for d in candidate)
            if key not in seen:
                if served_bytes(vocab_kept, list(key)) > budget:
                    seen[key] = -math.inf
                else:
                    supernet.candidate = torch.tensor(key)
                    seen[key] = run.evaluate(model, "valid").auc
                    supernet.candidate = None
            return seen[key]

        for _ in range(c.iterations):
            scores = [fitness(p) for p in population]
            order = np.argsort(scores)[::-1]
            population = [population[i] for i in order]
            if scores[order[0]] > best[0]:
                best = (scores[order[0]], [int(d) for d in population[0]])
            mutated = []
            for parent in population[:c.mutations]:
                child = parent.copy()
                flip = rng.random(fields) < c.mutation_probability
                child[flip] = rng.integers(1, dim + 1, int(flip.sum()))
                mutated.append(child)
            crossed = []
            for _ in range(c.crossovers):
                x, y = rng.integers(0, min(c.crossovers + 1, len(population)), 2)  # among the best, as the official
                point = int(rng.integers(1, fields)) if fields > 1 else 1
                crossed.append(np.concatenate([population[x][:point], population[y][point:]]))
            population = mutated + crossed
        if not math.isfinite(best[0]):
            smallest = served_bytes(vocab_kept, [1] * fields)
            raise BudgetError(f"{self.name}: ratio {c.ratio:g} is out of reach; after pruning, one dimension per "
                              f"field needs {smallest} bytes (about {run.schema.full_bytes / smallest:.3g}x)")
        return best[1], best[0]
