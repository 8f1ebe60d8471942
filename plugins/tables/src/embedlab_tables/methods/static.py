"""Inter-feature compression with static encodings: features share parameters through fixed
hash/index functions (Hash, Q-R compositional, TT-Rec, DHE, ROBE), plus the uncompressed baseline.

Budgets follow the benchmark's code (Hsword/Hetu, ``tools/EmbeddingMemoryCompression``): per-field
methods (Q-R, TT-Rec, DHE) compress a field only when that saves memory and pick the most expressive
setting (smallest collision, largest rank, widest MLP) whose total fits; Hash and ROBE share one
table or array across all fields.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
import torch

from embedlab_tables.hashing import PRIME, primes_at_least, universal_hash, universal_parameters
from embedlab_tables.method import Plan, RatioConfig, TableMethod
from embedlab_tables.schema import FLOAT, BudgetError, TableSchema
from embedlab_tables.table import (
    EmbeddingTable,
    FieldTable,
    FieldwiseTable,
    FullTable,
    PlainField,
    default_init_scale,
    generator,
    uniform_parameter,
)

_v = attrs.validators


class Full(TableMethod):
    """The uncompressed table: one float32 row per feature (the baseline every method is compared with)."""

    name = "full"
    family = "baseline"

    def plan(self, schema: TableSchema) -> Plan:
        self.check_fits(schema, schema.full_bytes, "the uncompressed table")
        return {"bytes": schema.full_bytes}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return FullTable(schema, seed)


# -- hashing --------------------------------------------------------------------------------------

class HashTable(EmbeddingTable):
    """Rows shared through ``id mod rows`` (or a universal hash), globally or per field."""

    def __init__(self, schema: TableSchema, rows: list[int], scope: str, function: str, seed: int) -> None:
        super().__init__(schema)
        self.scope, self.function = scope, function
        total = int(sum(rows))
        self.sparse_table("weight", uniform_parameter((total, schema.dim), default_init_scale(schema), generator(seed)))
        if scope == "field":
            self.register_buffer("rows", torch.tensor(rows, dtype=torch.int64), persistent=False)
            self.register_buffer("row_offsets", torch.tensor(np.concatenate([[0], np.cumsum(rows)[:-1]]),
                                                             dtype=torch.int64), persistent=False)
        else:
            self.register_buffer("rows", torch.tensor(total, dtype=torch.int64), persistent=False)
        ab = universal_parameters(schema.n_fields if scope == "field" else 1, seed + 101)
        self.register_buffer("a", torch.from_numpy(ab[:, 0].copy()), persistent=False)
        self.register_buffer("b", torch.from_numpy(ab[:, 1].copy()), persistent=False)

    def rows_of(self, ids: torch.Tensor) -> torch.Tensor:
        keys = ids - self.offsets if self.scope == "field" else ids
        if self.function == "mod":
            slot = torch.remainder(keys, self.rows)
        else:
            slot = universal_hash(keys, self.a, self.b, self.rows)
        return slot + self.row_offsets if self.scope == "field" else slot

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lookup(self.weight, self.rows_of(ids))


class Hash(TableMethod):
    """The hashing trick (Weinberger et al. 2009): ``rows = budget / row bytes`` shared rows.

    ``scope="global"`` (the benchmark's Hash: one table for all fields, global id mod rows; at ratio 1
    it is the identity) or ``"field"`` (per-feature hashing: each field gets rows in proportion to
    its vocabulary, the baseline of Unified Embedding). ``function``: ``"mod"`` (the benchmark's) or
    ``"universal"`` (seeded ``((a x + b) mod p) mod rows``).
    """

    name = "hash"
    family = "inter-feature, static encoding"

    @attrs.frozen
    class Config(RatioConfig):
        scope: str = attrs.field(default="global", validator=_v.in_(("global", "field")))
        function: str = attrs.field(default="mod", validator=_v.in_(("mod", "universal")))

    def plan(self, schema: TableSchema) -> Plan:
        budget_rows = self.budget(schema) // (schema.dim * FLOAT)
        if self.config.scope == "global":
            rows = [int(min(schema.n_features, budget_rows))]
        else:
            rows = field_rows(schema.vocab_sizes, budget_rows, self.name)
        return {"rows": rows, "bytes": int(sum(rows)) * schema.dim * FLOAT}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return HashTable(schema, list(plan["rows"]), self.config.scope, self.config.function, seed)


def field_rows(vocab_sizes: tuple[int, ...], budget_rows: int, who: str) -> list[int]:
    """Rows per field in proportion to its vocabulary (at least 1, at most the vocabulary), summing
    to at most ``budget_rows``."""
    if budget_rows < len(vocab_sizes):
        raise BudgetError(f"{who}: {budget_rows} rows cannot give each of {len(vocab_sizes)} fields one row")
    vocab = np.asarray(vocab_sizes, dtype=np.float64)
    if budget_rows >= vocab.sum():
        return [int(v) for v in vocab_sizes]
    low, high = 0.0, 1.0
    for _ in range(60):  # largest share s with sum(clip(floor(s v), 1, v)) <= budget
        mid = (low + high) / 2
        if np.clip(np.floor(mid * vocab), 1, vocab).sum() <= budget_rows:
            low = mid
        else:
            high = mid
    return [int(r) for r in np.clip(np.floor(low * vocab), 1, vocab)]


# -- Q-R compositional --------------------------------------------------------------------------------

class QRField(FieldTable):
    """Quotient and remainder tables of one field, combined by product, sum or concatenation."""

    sparse_names = ("quotient", "remainder")

    def __init__(self, vocab: int, collision: int, dim: int, operation: str, scale: float,
                 gen: torch.Generator) -> None:
        super().__init__()
        self.collision, self.operation = collision, operation
        part = dim // 2 if operation == "concat" else dim
        self.quotient = uniform_parameter((math.ceil(vocab / collision), part), scale, gen)
        self.remainder = uniform_parameter((collision, dim - part if operation == "concat" else dim), scale, gen)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        q = torch.nn.functional.embedding(torch.div(ids, self.collision, rounding_mode="floor"), self.quotient,
                                          sparse=True)
        r = torch.nn.functional.embedding(torch.remainder(ids, self.collision), self.remainder, sparse=True)
        if self.operation == "mult":
            return q * r
        if self.operation == "sum":
            return q + r
        return torch.cat([q, r], dim=1)


class QuotientRemainder(TableMethod):
    """Compositional embeddings with the quotient-remainder trick (Shi et al., KDD 2020; the
    benchmark's CompoEmb): a field's id ``x`` is embedded as ``Q[x // c] * R[x mod c]``.

    The collision ``c`` (shared by all fields) is the smallest that fits the budget; a field is
    compressed only when ``ceil(v / c) + c < v``. ``operation``: ``"mult"`` (the benchmark's),
    ``"sum"`` or ``"concat"``.
    """

    name = "qr"
    family = "inter-feature, static encoding"

    @attrs.frozen
    class Config(RatioConfig):
        operation: str = attrs.field(default="mult", validator=_v.in_(("mult", "sum", "concat")))

    def _rows(self, vocab: int, collision: int) -> int:
        rows = math.ceil(vocab / collision) + collision
        return rows if rows < vocab else vocab

    def plan(self, schema: TableSchema) -> Plan:
        budget_rows = self.budget(schema) // (schema.dim * FLOAT)
        if self.config.operation == "concat":  # each part is half a row
            budget_rows *= 2
        largest = max(schema.vocab_sizes)
        for collision in range(1, math.isqrt(largest) + 2):
            rows = [self._rows(v, collision) for v in schema.vocab_sizes]
            if sum(rows) <= budget_rows:
                compressed = [self._rows(v, collision) < v for v in schema.vocab_sizes]
                nbytes = sum(r * schema.dim * FLOAT for r in rows)
                if self.config.operation == "concat":
                    nbytes = sum((r if c else 2 * r) * (schema.dim // 2) * FLOAT
                                 for r, c in zip(rows, compressed))
                return {"collision": collision, "compressed": compressed, "bytes": int(nbytes)}
        best = min(sum(self._rows(v, c) for v in schema.vocab_sizes) for c in range(1, math.isqrt(largest) + 2))
        if self.config.operation == "concat":
            best /= 2
        raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} is out of reach; the smallest Q-R tables "
                          f"hold {best} rows (about {schema.n_features / best:.3g}x)")

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        gen, scale = generator(seed), default_init_scale(schema)
        fields = [QRField(v, plan["collision"], schema.dim, self.config.operation, scale, gen) if compress
                  else PlainField(v, schema.dim, scale, gen)
                  for v, compress in zip(schema.vocab_sizes, plan["compressed"])]
        return FieldwiseTable(schema, fields)


# -- TT-Rec --------------------------------------------------------------------------------------------

def factor_dim(dim: int) -> list[int]:
    """Three factors of ``dim`` (the benchmark's: powers of two spread 2,2,2 -> 2,2,4 -> 2,4,4 ...)."""
    if dim & (dim - 1) == 0 and dim >= 8:
        factors, idx, rest = [2, 2, 2], 2, dim // 8
        while rest != 1:
            factors[idx] *= 2
            rest //= 2
            idx = (idx - 1) % 3
        return factors
    n1 = math.ceil(dim ** (1 / 3))
    while dim % n1:
        n1 -= 1
    rest = dim // n1
    n2 = math.ceil(math.sqrt(rest))
    while rest % n2:
        n2 -= 1
    return sorted([n1, n2, rest // n2])


def factor_vocab(vocab: int) -> list[int]:
    """Three row counts whose product covers ``vocab`` (the benchmark's decomposition)."""
    n1 = math.ceil(vocab ** (1 / 3))
    n2 = math.ceil(math.sqrt(vocab / n1))
    n3 = math.ceil(vocab / n1 / n2)
    return [n3, n2, n1]


def tt_params(rows: list[int], dims: list[int], rank: int) -> int:
    return (rows[0] * dims[0] + rows[1] * dims[1] * rank + rows[2] * dims[2]) * rank


class TTField(FieldTable):
    """Three tensor-train cores; row ``x`` is the product of core slices indexed by its mixed-radix digits."""

    sparse_names = ("core0", "core1", "core2")

    def __init__(self, rows: list[int], dims: list[int], rank: int, scale: float, gen: torch.Generator) -> None:
        super().__init__()
        self.rows, self.dims, self.rank = rows, dims, rank
        # entries of the product are sums of rank^2 triple products: match the plain table's variance
        std = (scale ** 2 / 3 / rank ** 2) ** (1 / 6)
        shapes = [(rows[0], dims[0] * rank), (rows[1], rank * dims[1] * rank), (rows[2], rank * dims[2])]
        for i, shape in enumerate(shapes):
            setattr(self, f"core{i}", torch.nn.Parameter(torch.randn(*shape, generator=gen) * std))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        r0, r1, _ = self.rows
        d0, d1, d2 = self.dims
        rank = self.rank
        i0 = torch.remainder(ids, r0)
        rest = torch.div(ids, r0, rounding_mode="floor")
        i1, i2 = torch.remainder(rest, r1), torch.div(rest, r1, rounding_mode="floor")
        emb = torch.nn.functional.embedding
        a = emb(i0, self.core0, sparse=True).view(-1, d0, rank)
        b = emb(i1, self.core1, sparse=True).view(-1, rank, d1 * rank)
        c = emb(i2, self.core2, sparse=True).view(-1, rank, d2)
        ab = torch.bmm(a, b).view(-1, d0 * d1, rank)
        return torch.bmm(ab, c).reshape(-1, d0 * d1 * d2)


class TTRec(TableMethod):
    """TT-Rec (Yin et al., MLSys 2021): each field's table as a three-core tensor train.

    Dimensions and vocabularies are factored as in the benchmark's code; the TT rank (shared by all
    compressed fields) is the largest that fits; a field is compressed only when its cores are
    smaller than its table.
    """

    name = "tt-rec"
    family = "inter-feature, static encoding"

    @attrs.frozen
    class Config(RatioConfig):
        max_rank: int = attrs.field(default=256, validator=[_v.instance_of(int), _v.ge(1)])

    def plan(self, schema: TableSchema) -> Plan:
        dims = factor_dim(schema.dim)
        rows = [factor_vocab(v) for v in schema.vocab_sizes]
        budget = self.budget(schema) // FLOAT

        def total(rank: int) -> int:
            return sum(min(v * schema.dim, tt_params(r, dims, rank)) for v, r in zip(schema.vocab_sizes, rows))

        if total(1) > budget:
            raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} is out of reach; rank 1 needs "
                              f"{total(1) * FLOAT} bytes (about {schema.full_bytes / (total(1) * FLOAT):.3g}x)")
        low, high = 1, self.config.max_rank
        while low < high:  # largest rank that fits (total is non-decreasing in the rank)
            mid = (low + high + 1) // 2
            low, high = (mid, high) if total(mid) <= budget else (low, mid - 1)
        compressed = [tt_params(r, dims, low) < v * schema.dim for v, r in zip(schema.vocab_sizes, rows)]
        return {"rank": low, "dims": dims, "rows": rows, "compressed": compressed, "bytes": total(low) * FLOAT}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        gen, scale = generator(seed), default_init_scale(schema)
        fields = [TTField(list(r), list(plan["dims"]), plan["rank"], scale, gen) if compress
                  else PlainField(v, schema.dim, scale, gen)
                  for v, r, compress in zip(schema.vocab_sizes, plan["rows"], plan["compressed"])]
        return FieldwiseTable(schema, fields)


# -- DHE -------------------------------------------------------------------------------------------

def dhe_params(num_hash: int, hidden: int, dim: int) -> int:
    """Values a served DHE MLP keeps: 5 hidden layers (weights, biases, batch-norm scale, shift and
    running statistics) and the output layer (the benchmark's count omits the running statistics)."""
    return (num_hash + 1) * hidden + 4 * hidden * (hidden + 1) + (hidden + 1) * dim + 20 * hidden


class DHEField(FieldTable):
    """Deep hash embedding: ``num_hash`` universal hashes of the id, scaled to [-1, 1], into an MLP."""

    sparse_names = ()

    def __init__(self, num_hash: int, buckets: int, hidden: int, dim: int, hashes: np.ndarray,
                 gen: torch.Generator) -> None:
        super().__init__()
        self.buckets = buckets
        self.register_buffer("slopes", torch.from_numpy(hashes[0]), persistent=False)
        self.register_buffer("biases", torch.from_numpy(hashes[1]), persistent=False)
        self.register_buffer("primes", torch.from_numpy(hashes[2]), persistent=False)
        layers: list[torch.nn.Module] = []
        width = num_hash
        for _ in range(5):
            layers += [torch.nn.Linear(width, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.Mish()]
            width = hidden
        layers.append(torch.nn.Linear(width, dim))
        self.mlp = torch.nn.Sequential(*layers)
        with torch.no_grad():
            for layer in self.mlp:
                if isinstance(layer, torch.nn.Linear):
                    torch.nn.init.xavier_normal_(layer.weight, generator=gen)
                    layer.bias.zero_()

    def encode(self, ids: torch.Tensor) -> torch.Tensor:
        hashed = torch.remainder(torch.remainder(ids[:, None] * self.slopes + self.biases, self.primes), self.buckets)
        return hashed.to(torch.float32) * (2.0 / (self.buckets - 1)) - 1.0

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        unique, inverse = torch.unique(ids, return_inverse=True)
        if self.training and unique.numel() < 2:  # batch norm needs two rows
            unique = torch.cat([unique, unique + 1])
        return self.mlp(self.encode(unique))[inverse]

    def storage(self) -> dict[str, np.ndarray]:
        return {name: value.detach().numpy().astype(np.float32) for name, value in self.mlp.state_dict().items()
                if not name.endswith("num_batches_tracked")}


class DHE(TableMethod):
    """Deep Hash Embedding (Kang et al., KDD 2021): no table, ``num_hash`` hashes of the id decoded by a
    5-layer MLP with batch norm and Mish.

    The benchmark's setting: 1,000,000 buckets, 1024 hashes, uniform encoding; the hidden width is
    the largest that fits; a field is replaced by its own MLP only when that is smaller than its table.
    Stored bytes: the MLP weights and batch-norm statistics (the hash constants are regenerated from
    the seed). The MLP runs on the batch's unique ids only (same outputs, less work).
    """

    name = "dhe"
    family = "inter-feature, static encoding"

    @attrs.frozen
    class Config(RatioConfig):
        num_hash: int = attrs.field(default=1024, validator=[_v.instance_of(int), _v.ge(2)])
        buckets: int = attrs.field(default=1_000_000, validator=[_v.instance_of(int), _v.ge(2), _v.lt(2 ** 31)])
        max_hidden: int = attrs.field(default=2048, validator=[_v.instance_of(int), _v.ge(1)])

    def plan(self, schema: TableSchema) -> Plan:
        c = self.config
        budget = self.budget(schema) // FLOAT

        def total(hidden: int) -> int:
            mlp = dhe_params(c.num_hash, hidden, schema.dim)
            return sum(min(v * schema.dim, mlp) for v in schema.vocab_sizes)

        if total(1) > budget:
            raise BudgetError(f"{self.name}: ratio {c.ratio:g} is out of reach; width-1 MLPs need {total(1) * FLOAT} "
                              f"bytes (about {schema.full_bytes / (total(1) * FLOAT):.3g}x)")
        low, high = 1, c.max_hidden
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if total(mid) <= budget else (low, mid - 1)
        mlp = dhe_params(c.num_hash, low, schema.dim)
        compressed = [mlp < v * schema.dim for v in schema.vocab_sizes]
        return {"hidden": low, "compressed": compressed, "bytes": total(low) * FLOAT}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        c = self.config
        gen, scale = generator(seed), default_init_scale(schema)
        rng = np.random.default_rng(seed + 211)
        primes = primes_at_least(c.buckets, 256)
        hashes = np.stack([rng.integers(1, c.buckets, c.num_hash), rng.integers(1, c.buckets, c.num_hash),
                           rng.choice(primes, c.num_hash)]).astype(np.int64)
        fields = [DHEField(c.num_hash, c.buckets, plan["hidden"], schema.dim, hashes, gen) if compress
                  else PlainField(v, schema.dim, scale, gen)
                  for v, compress in zip(schema.vocab_sizes, plan["compressed"])]
        return FieldwiseTable(schema, fields)


# -- ROBE -------------------------------------------------------------------------------------------

class RobeTable(EmbeddingTable):
    """One flat array; coordinate ``j`` of feature ``x`` is ``sign(x, j) * A[h(x, j) mod size]`` (Z = 1)."""

    def __init__(self, schema: TableSchema, size: int, seed: int) -> None:
        super().__init__(schema)
        self.size = size
        self.sparse_table("array", uniform_parameter((size, 1), default_init_scale(schema), generator(seed)))
        params = universal_parameters(3, seed + 307)
        self.register_buffer("coefficients", torch.from_numpy(params.reshape(-1).copy()), persistent=False)
        self.register_buffer("coordinates", torch.arange(schema.dim, dtype=torch.int64), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        a, b, c, d, e, f = self.coefficients.tolist()
        x = ids.unsqueeze(-1)
        j = self.coordinates
        slot = torch.remainder(torch.remainder(a * x + b * j + c, PRIME), self.size)
        sign = torch.remainder(torch.remainder(d * x + e * j + f, PRIME), 2).to(torch.float32) * 2 - 1
        return self.lookup(self.array, slot).squeeze(-1) * sign


class ROBE(TableMethod):
    """Random Offset Block Embedding (Desai et al., MLSys 2022) with Z = 1 (the benchmark's setting):
    every coordinate of every feature is hashed, with a random sign, into one shared float32 array of
    ``budget / 4`` values."""

    name = "robe"
    family = "inter-feature, static encoding"

    def plan(self, schema: TableSchema) -> Plan:
        size = int(min(self.budget(schema) // FLOAT, schema.n_features * schema.dim))
        return {"size": size, "bytes": size * FLOAT}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        return RobeTable(schema, int(plan["size"]), seed)
