"""The multiplexed table and the method that sizes it for a compression ratio."""

from __future__ import annotations

import attrs
import torch
from embedlab_tables.hashing import universal_hash, universal_parameters
from embedlab_tables.method import Plan, RatioConfig, TableMethod
from embedlab_tables.schema import FLOAT, BudgetError, TableSchema
from embedlab_tables.table import EmbeddingTable, default_init_scale, generator, uniform_parameter

_v = attrs.validators


class UnifiedTable(EmbeddingTable):
    """``rows`` x ``dim / probes`` shared by all fields; field ``f``'s value ``v`` is
    ``concat_j E[h_{f,j}(v)]`` with ``h_{f,j}(v) = ((a_{fj} v + b_{fj}) mod p) mod rows`` (seeded)."""

    def __init__(self, schema: TableSchema, rows: int, probes: int, seed: int) -> None:
        super().__init__(schema)
        self.rows, self.probes = rows, probes
        width = schema.dim // probes
        self.sparse_table("weight", uniform_parameter((rows, width), default_init_scale(schema), generator(seed)))
        ab = universal_parameters(schema.n_fields * probes, seed + 503).reshape(schema.n_fields, probes, 2)
        self.register_buffer("a", torch.from_numpy(ab[:, :, 0].copy()), persistent=False)
        self.register_buffer("b", torch.from_numpy(ab[:, :, 1].copy()), persistent=False)

    def slots(self, ids: torch.Tensor) -> torch.Tensor:
        """Rows ``(batch, fields, probes)`` of global ids ``(batch, fields)``."""
        local = (ids - self.offsets).unsqueeze(-1)
        return universal_hash(local, self.a, self.b, self.rows)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        batch, fields = ids.shape
        return self.lookup(self.weight, self.slots(ids)).reshape(batch, fields, self.dim)


class UnifiedEmbedding(TableMethod):
    """Unified Embedding: one multiplexed table of ``budget / (dim / probes * 4)`` rows for all fields,
    each value looked up ``probes`` times (field-specific hashes) and the pieces concatenated.

    ``probes`` must divide the model dimension (the paper's multi-size variant gives fields different
    numbers of probes; here every field has the model's one dimension). At every ratio, 1 included,
    features collide across and within fields: the table is never the uncompressed one."""

    name = "unified-embedding"
    family = "inter-feature, static encoding (multiplexed)"

    @attrs.frozen
    class Config(RatioConfig):
        probes: int = attrs.field(default=1, validator=[_v.instance_of(int), _v.ge(1)])

    def plan(self, schema: TableSchema) -> Plan:
        probes = self.config.probes
        if schema.dim % probes:
            raise BudgetError(f"{self.name}: probes={probes} must divide the embedding dimension {schema.dim}")
        row_bytes = schema.dim // probes * FLOAT
        rows = self.budget(schema) // row_bytes
        if rows < 1:
            raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} leaves less than one {row_bytes}-byte row")
        return {"rows": int(rows), "probes": probes, "bytes": int(rows) * row_bytes}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return UnifiedTable(schema, int(plan["rows"]), int(plan["probes"]), seed)
