"""Embedding-table methods as plugin components of the kind ``embedding-table``.

A method is configured by its hyper-parameters and a compression ``ratio`` (the uncompressed
float32 table's bytes divided by the bytes the trained table may keep). Its life:

1. :meth:`TableMethod.plan` turns the ratio into a concrete layout for a schema (rows, rank, bits,
   dimensions...) as JSON-ready data with its ``bytes``; a ratio the method cannot reach raises
   :class:`~embedlab_tables.schema.BudgetError` saying what it can reach. At ratio 1 every method
   that can leave the table uncompressed does (the benchmark's rule: a field is compressed only
   when that saves memory, and the most expressive setting that fits is chosen).
2. :meth:`TableMethod.build` makes the torch :class:`~embedlab_tables.table.EmbeddingTable` of a plan.
3. :meth:`TableMethod.fit` trains it through the harness (:class:`~embedlab_tables.training.TableRun`):
   one training run by default, several stages for multi-stage methods (warm-up, search, retrain).
   It returns a :class:`FittedTable` whose ``plan`` rebuilds the final table (``build`` + the saved
   weights: :meth:`TableMethod.save` / :meth:`TableMethod.load`).

Third parties add a method by subclassing :class:`TableMethod` in their own plugin and registering
it: ``registry.add("embedding-table", "my-method", MyMethod)`` (declare ``embedlab-tables`` as a
dependency; embedlab-tables declares the kind).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np
import torch

from embedlab.components import Component
from embedlab.errors import EmbedlabError, NotFittedError, StateError
from embedlab.persistence import load_state, save_state
from embedlab_tables.models import CTRModel, ModelConfig
from embedlab_tables.schema import BudgetError, TableSchema
from embedlab_tables.table import EmbeddingTable
from embedlab_tables.training import TableRun, TrainLog

KIND = "embedding-table"
KIND_DESCRIPTION = ("compressed embedding tables for CTR models (embedlab-tables): hashing, Q-R, TT-Rec, DHE, "
                    "ROBE, quantisation, pruning, dimension search ...")

_v = attrs.validators


def _ratio(_: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 1:
        raise ValueError(f"{attribute.name} must be a finite number >= 1 (1 = uncompressed), got {value!r}")


def ratio_field(default: float = 1.0) -> Any:
    return attrs.field(default=default, converter=float, validator=_ratio)


@attrs.frozen
class RatioConfig:
    """Config every method extends: ``ratio``, the target compression ratio (>= 1)."""

    ratio: float = ratio_field()


Plan = dict[str, Any]


@attrs.define(eq=False)
class FittedTable:
    """A trained CTR model with its table, the final plan and what each training stage did."""

    method: TableMethod
    model: CTRModel
    plan: Plan
    logs: dict[str, TrainLog] = attrs.field(factory=dict)
    info: dict[str, Any] = attrs.field(factory=dict)

    @property
    def table(self) -> EmbeddingTable:
        return self.model.table

    @property
    def storage_bytes(self) -> int:
        return self.table.storage_bytes()

    @property
    def train_seconds(self) -> float:
        return float(sum(log.seconds for log in self.logs.values()))


class TableMethod(Component):
    """Base class of the ``embedding-table`` components (see the module docstring)."""

    kind = KIND
    #: Taxonomy of the benchmark (inter-feature static/dynamic, intra-feature dimension/pruning/quantisation).
    family: ClassVar[str] = ""
    Config: ClassVar[type] = RatioConfig

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.fitted: FittedTable | None = None

    # -- to implement ------------------------------------------------------------------------------
    def plan(self, schema: TableSchema) -> Plan:
        """Concrete layout for ``schema`` at ``config.ratio``, with its ``bytes`` (BudgetError if unreachable)."""
        raise NotImplementedError

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        """The torch table of ``plan`` (seeded)."""
        raise NotImplementedError

    # -- provided ------------------------------------------------------------------------------------
    def budget(self, schema: TableSchema) -> int:
        return schema.budget(self.config.ratio)

    def check_fits(self, schema: TableSchema, nbytes: float, what: str) -> None:
        """BudgetError when ``nbytes`` exceeds the budget."""
        budget = self.budget(schema)
        if nbytes > budget:
            raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} allows {budget} bytes but {what} needs "
                              f"{int(nbytes)} (at most {schema.full_bytes / nbytes:.3g}x)")

    def fit(self, run: TableRun) -> FittedTable:
        """Train the table of :meth:`plan` once (multi-stage methods override this)."""
        plan = self.plan(run.schema)
        model = run.new_model(self.build(run.schema, plan, run.seed))
        log = run.train(model, label=self.name)
        self.finalize(model.table)
        self.fitted = FittedTable(self, model, plan, {"train": log})
        return self.fitted

    def finalize(self, table: EmbeddingTable) -> None:
        """Turn a trained table into its served form (codes, pruned values...) when it has one."""
        final = getattr(table, "finalize", None)
        if callable(final):
            final()

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """The fitted model (table and network weights), plan, schema and model config."""
        fitted = self._fitted()
        arrays = {f"state.{k}": v.detach().cpu().numpy() for k, v in fitted.model.state_dict().items()}
        schema = fitted.table.schema
        assert schema.counts is not None
        arrays["schema.counts"] = schema.counts
        meta = {"plan": fitted.plan, "info": _jsonable(fitted.info), "vocab_sizes": list(schema.vocab_sizes),
                "field_names": list(schema.field_names or ()), "n_dense": fitted.model.n_dense,
                "model": attrs.asdict(fitted.model.config), "storage_bytes": fitted.storage_bytes}
        save_state(path, self, arrays=arrays, meta=meta)

    @classmethod
    def load(cls, path: str | Path) -> TableMethod:
        """Read a method written by :meth:`save`. The schema and plan are checked, and the model is
        first built on torch's ``meta`` device (no memory) so a forged plan cannot allocate more than
        the saved weights hold: every saved tensor must have the shape and dtype the plan builds."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        method = state.build(cls)
        counts = state.array("schema.counts", kinds="iu", ndim=1)
        vocab = state.value("vocab_sizes", list)
        if not vocab or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in vocab) \
                or sum(vocab) != len(counts):
            raise state.error(f"meta.vocab_sizes must be positive integers summing to the {len(counts)} rows of "
                              "schema.counts.npy")
        names = state.value("field_names", list, default=[])
        if names and (len(names) != len(vocab) or not all(isinstance(n, str) for n in names)):
            raise state.error(f"meta.field_names must be {len(vocab)} strings")
        weights = {k[len("state."):]: v for k, v in state.arrays.items() if k.startswith("state.")}
        n_dense = state.value("n_dense", int, minimum=0, maximum=sum(v.size for v in weights.values()))
        plan = state.value("plan", dict)
        try:
            model_config = ModelConfig(**state.value("model", dict))
            schema = TableSchema(vocab, model_config.dim, counts, tuple(names) or None)
            with torch.device("meta"):
                shapes = CTRModel(method.build(schema, plan, 0), n_dense, model_config, 0).state_dict()
            expected = {k: (tuple(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in shapes.items()}
            found = {k: (tuple(v.shape), str(v.dtype)) for k, v in weights.items()}
            if expected != found:
                raise state.error(f"the saved tensors do not fit the saved plan and model (expected {expected}, "
                                  f"found {found})"[:2000])
            model = CTRModel(method.build(schema, plan, 0), n_dense, model_config, 0)
            model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in weights.items()})
            with torch.no_grad():  # every feature id looked up once: forged codes or indices fail here
                model.table.eval()(all_feature_ids(schema))
            model.train()
        except StateError:
            raise
        except (EmbedlabError, KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError,
                OverflowError, ZeroDivisionError) as error:
            raise state.error(f"not a fitted {cls.name} table: {type(error).__name__}: {str(error)[:300]}") from None
        method.fitted = FittedTable(method, model, plan, {}, state.value("info", dict, default={}))
        if method.fitted.storage_bytes != state.value("storage_bytes", int, default=None):
            raise state.error(f"the reloaded table keeps {method.fitted.storage_bytes} bytes, the saved one "
                              f"{state.meta.get('storage_bytes')}")
        return method

    def _fitted(self) -> FittedTable:
        if self.fitted is None:
            raise NotFittedError(f"{self.name}: call fit(run) first")
        return self.fitted


def all_feature_ids(schema: TableSchema) -> torch.Tensor:
    """``(max vocabulary, fields)`` global ids in which every feature id of every field occurs."""
    local = np.minimum(np.arange(max(schema.vocab_sizes))[:, None], np.asarray(schema.vocab_sizes)[None, :] - 1)
    return torch.from_numpy(local + schema.offsets[None, :-1])


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))
