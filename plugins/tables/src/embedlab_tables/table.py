"""The torch side of an embedding table: the module every method builds.

A table maps global feature ids ``(batch, fields)`` to embeddings ``(batch, fields, dim)``. Beyond
``forward`` it tells the harness:

* :meth:`EmbeddingTable.storage`: the arrays a trained table must keep to serve lookups, in their
  storage dtype (int8 codes, CSR indices, index maps...). Memory is the sum of their bytes; hash
  seeds and other O(1) constants are not counted.
* :meth:`EmbeddingTable.penalty`: a regulariser added to the log-loss (or None);
* :meth:`EmbeddingTable.after_step`: work after each optimiser step (re-quantisation, pruning);
* :meth:`EmbeddingTable.optimizer_groups`: parameters trained by their own optimiser (thresholds
  with plain SGD...); every other parameter is trained by the harness's Adam, and the ones looked
  up through :meth:`EmbeddingTable.lookup` by sparse (lazy) Adam, as in the benchmark.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import attrs
import numpy as np
import torch
import torch.nn.functional as F

from embedlab_tables.schema import TableSchema


@attrs.define
class OptimizerGroup:
    """Parameters with their own optimiser: ``kind`` "sgd", "adam" (with ``weight_decay``) or "none"
    (the method updates them itself), learning rate ``lr``."""

    params: list[torch.nn.Parameter]
    kind: str = attrs.field(default="sgd", validator=attrs.validators.in_(("sgd", "adam", "none")))
    lr: float = 1e-3
    weight_decay: float = 0.0


def default_init_scale(schema: TableSchema) -> float:
    """The benchmark's initialiser bound: U(-a, a) with ``a = sqrt(1 / largest vocabulary)``."""
    return float(np.sqrt(1.0 / max(schema.vocab_sizes)))


def uniform_parameter(shape: Sequence[int], scale: float, generator: torch.Generator) -> torch.nn.Parameter:
    """A parameter drawn from U(-scale, scale) with ``generator``."""
    values = torch.rand(*shape, generator=generator, dtype=torch.float32) * (2 * scale) - scale
    return torch.nn.Parameter(values)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


class EmbeddingTable(torch.nn.Module):
    """Base class of every method's table (see the module docstring)."""

    def __init__(self, schema: TableSchema) -> None:
        super().__init__()
        self.schema = schema
        self.dim = schema.dim
        self._sparse: list[str] = []
        self.register_buffer("offsets", torch.from_numpy(schema.offsets[:-1].copy()), persistent=False)

    # -- lookups ---------------------------------------------------------------------------------
    def sparse_table(self, name: str, parameter: torch.nn.Parameter) -> torch.nn.Parameter:
        """Register ``parameter`` as attribute ``name``, looked up row-wise (trained by sparse Adam)."""
        self.register_parameter(name, parameter)
        self._sparse.append(name)
        return parameter

    @staticmethod
    def lookup(weight: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Rows ``ids`` of ``weight`` with a sparse gradient."""
        return F.embedding(ids, weight, sparse=True)

    def sparse_parameters(self) -> list[torch.nn.Parameter]:
        return [getattr(self, name) for name in self._sparse]

    # -- hooks ------------------------------------------------------------------------------------
    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def penalty(self) -> torch.Tensor | None:
        return None

    def after_step(self, step: int) -> None:
        """Called after every optimiser step (``step`` counts from 1)."""

    def optimizer_groups(self) -> list[OptimizerGroup]:
        return []

    # -- memory ----------------------------------------------------------------------------------
    def storage(self) -> dict[str, np.ndarray]:
        """Arrays a served table keeps (default: every parameter as float32)."""
        return {name: p.detach().cpu().numpy().astype(np.float32) for name, p in self.named_parameters()}

    def storage_bytes(self) -> int:
        return int(sum(a.nbytes for a in self.storage().values()))


class FullTable(EmbeddingTable):
    """One float32 row per feature: the uncompressed baseline."""

    def __init__(self, schema: TableSchema, seed: int, init_scale: float | None = None) -> None:
        super().__init__(schema)
        scale = default_init_scale(schema) if init_scale is None else init_scale
        self.sparse_table("weight", uniform_parameter((schema.n_features, schema.dim), scale, generator(seed)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(self.weight, ids)


class FieldTable(torch.nn.Module):
    """One field's part of a :class:`FieldwiseTable`: local ids ``(n,)`` -> ``(n, dim)``."""

    def storage(self) -> dict[str, np.ndarray]:
        return {name: p.detach().cpu().numpy().astype(np.float32) for name, p in self.named_parameters()}


class PlainField(FieldTable):
    """An uncompressed field (fields a method leaves alone: compressing them would not save memory)."""

    def __init__(self, vocab: int, dim: int, scale: float, gen: torch.Generator) -> None:
        super().__init__()
        self.weight = uniform_parameter((vocab, dim), scale, gen)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return F.embedding(ids, self.weight, sparse=True)


class FieldwiseTable(EmbeddingTable):
    """A table made of one :class:`FieldTable` per field (compressed or plain)."""

    def __init__(self, schema: TableSchema, fields: Sequence[torch.nn.Module]) -> None:
        super().__init__(schema)
        if len(fields) != schema.n_fields:
            raise ValueError(f"{len(fields)} field tables for {schema.n_fields} fields")
        self.fields = torch.nn.ModuleList(fields)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        local = ids - self.offsets
        return torch.stack([table(local[:, f]) for f, table in enumerate(self.fields)], dim=1)

    def sparse_parameters(self) -> list[torch.nn.Parameter]:
        return [p for table in self.fields for p in _sparse_of(table)]

    def penalty(self) -> torch.Tensor | None:
        terms = [t.penalty() for t in self.fields if hasattr(t, "penalty")]
        terms = [t for t in terms if t is not None]
        return torch.stack(terms).sum() if terms else None

    def storage(self) -> dict[str, np.ndarray]:
        out = {}
        for f, table in enumerate(self.fields):
            for name, array in table.storage().items():  # type: ignore[operator]
                out[f"field{f}.{name}"] = array
        return out


def _sparse_of(module: torch.nn.Module) -> Iterator[torch.nn.Parameter]:
    """Parameters of a field table looked up row-wise: those named ``weight`` or listed in
    ``sparse_names``."""
    names = getattr(module, "sparse_names", ("weight",))
    for name in names:
        parameter = getattr(module, name, None)
        if isinstance(parameter, torch.nn.Parameter):
            yield parameter


def as_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
