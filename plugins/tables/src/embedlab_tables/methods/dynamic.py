"""Inter-feature compression with learned or frequency-based assignments: AdaptEmb, DPQ, MGQE, Dedup.

Following the benchmark's code, AdaptEmb, DPQ and MGQE work per field and compress a field only when
that saves memory; Dedup deduplicates blocks of rows of the trained (warm-up) table with LSH and
fine-tunes the shared blocks. Every index map a served table needs is counted in its bytes.
"""

from __future__ import annotations

import math
from collections import defaultdict

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
    FullTable,
    PlainField,
    default_init_scale,
    generator,
    uniform_parameter,
)
from embedlab_tables.training import TableRun

_v = attrs.validators

#: Bytes per frequent feature in AdaptEmb's id -> row map (int32 key and row).
MAP_ENTRY = 8


# -- AdaptEmb ------------------------------------------------------------------------------------------

class AdaptField(FieldTable):
    """Frequent ids get their own row; the others share ``rare`` rows by ``id mod rare``."""

    sparse_names = ("frequent", "rare")

    def __init__(self, remap: np.ndarray, n_frequent: int, n_rare: int, dim: int, scale: float,
                 gen: torch.Generator) -> None:
        super().__init__()
        self.n_rare = n_rare
        self.register_buffer("remap", torch.from_numpy(remap.astype(np.int64)))
        self.frequent = uniform_parameter((max(n_frequent, 1), dim), scale, gen)
        self.rare = uniform_parameter((n_rare, dim), scale, gen)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        row = self.remap[ids]
        own = F.embedding(row.clamp(min=0), self.frequent, sparse=True)
        shared = F.embedding(torch.remainder(ids, self.n_rare), self.rare, sparse=True)
        return torch.where((row >= 0).unsqueeze(1), own, shared)

    def storage(self) -> dict[str, np.ndarray]:
        kept = int((self.remap >= 0).sum())
        keys = np.flatnonzero(self.remap.numpy() >= 0).astype(np.int32)
        return {"frequent": self.frequent.detach().numpy()[:kept].astype(np.float32),
                "rare": self.rare.detach().numpy().astype(np.float32),
                "map": np.stack([keys, self.remap.numpy()[keys].astype(np.int32)], axis=1)}


class AdaptEmb(TableMethod):
    """Adaptive embedding (DeepRec's; the benchmark's AdaptEmb): a field's most frequent ids keep their
    own rows, the rest are hashed into a small shared table.

    Each field gets rows in proportion to its vocabulary; ``frequent_share`` of them (less the
    id -> row map, 8 bytes per frequent id) go to the most frequent ids (the benchmark varies its
    ``top_percent`` with the budget; here ``top_percent = frequent_share / ratio``).
    """

    name = "adaptemb"
    family = "inter-feature, dynamic encoding"

    @attrs.frozen
    class Config(RatioConfig):
        frequent_share: float = attrs.field(default=0.5, converter=float, validator=[_v.gt(0), _v.lt(1)])

    def plan(self, schema: TableSchema) -> Plan:
        from embedlab_tables.methods.static import field_rows

        row = schema.dim * FLOAT
        budget_rows = self.budget(schema) // row
        rows = field_rows(schema.vocab_sizes, budget_rows, self.name)
        frequent, rare = [], []
        for v, r in zip(schema.vocab_sizes, rows):
            if r >= v:
                frequent.append(v)
                rare.append(0)
                continue
            n_freq = int(self.config.frequent_share * r)
            while n_freq > 0 and r - n_freq - math.ceil(n_freq * MAP_ENTRY / row) < 1:
                n_freq -= 1
            frequent.append(n_freq)
            rare.append(r - n_freq - math.ceil(n_freq * MAP_ENTRY / row))
        nbytes = sum((f + r) * row + (f * MAP_ENTRY if r else 0) for f, r in zip(frequent, rare))
        return {"frequent": frequent, "rare": rare, "bytes": int(nbytes)}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        gen, scale = generator(seed), default_init_scale(schema)
        fields: list[torch.nn.Module] = []
        for f, (v, n_freq, n_rare) in enumerate(zip(schema.vocab_sizes, plan["frequent"], plan["rare"])):
            if n_rare == 0:
                fields.append(PlainField(v, schema.dim, scale, gen))
                continue
            remap = np.full(v, -1, dtype=np.int64)
            remap[schema.frequency_order(f)[:n_freq]] = np.arange(n_freq)
            fields.append(AdaptField(remap, n_freq, n_rare, schema.dim, scale, gen))
        return FieldwiseTable(schema, fields)


# -- DPQ / MGQE ----------------------------------------------------------------------------------------

def packed_codes(codes: np.ndarray, bits: np.ndarray | int) -> np.ndarray:
    """Codes of ``bits`` bits each (per row, or one width), bit-packed into uint8."""
    codes = np.asarray(codes, dtype=np.int64)
    widths = np.broadcast_to(np.asarray(bits, dtype=np.int64).reshape(-1, 1), codes.shape)
    width = int(widths.max())
    shifts = np.arange(width)
    planes = (codes[..., None] >> shifts) & 1
    keep = shifts[None, None, :] < widths[..., None]
    return np.packbits(planes[keep].astype(np.uint8))


class QuantizedField(FieldTable):
    """Differentiable product quantisation of one field (DPQ "vq" mode; MGQE with two code widths).

    Training looks rows up in a float query table, replaces each of ``parts`` sub-vectors by its
    nearest codeword (straight-through gradient) and adds the codebook loss; serving keeps only the
    codes and the codebooks.
    """

    sparse_names = ("query",)

    def __init__(self, vocab: int, dim: int, parts: int, choices: int, low_choices: int, frequent: np.ndarray,
                 scale: float, gen: torch.Generator) -> None:
        super().__init__()
        self.parts, self.choices, self.sub = parts, choices, dim // parts
        self.query = uniform_parameter((vocab, dim), scale, gen)
        self.codebook = uniform_parameter((parts, choices, self.sub), scale, gen)
        self.register_buffer("frequent", torch.from_numpy(frequent.astype(bool)))
        self.register_buffer("codes", torch.zeros(vocab, parts, dtype=torch.int64))
        self.low_choices = low_choices
        self.reg: torch.Tensor | None = None

    def _assign(self, query: torch.Tensor, frequent: torch.Tensor) -> torch.Tensor:
        parts = query.detach().view(-1, self.parts, 1, self.sub)
        distance = (parts - self.codebook.detach().unsqueeze(0)).pow(2).sum(-1)
        if self.low_choices < self.choices:  # MGQE: rare ids choose among the first low_choices only
            distance[~frequent, :, self.low_choices:] = float("inf")
        return distance.argmin(-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self.decode(self.codes[ids])
        query = F.embedding(ids, self.query, sparse=True)
        codes = self._assign(query, self.frequent[ids])
        self.codes[ids] = codes
        chosen = self.decode(codes)
        self.reg = (chosen - query.detach()).pow(2).mean()
        return query + (chosen - query).detach()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        part = torch.arange(self.parts)
        return self.codebook[part, codes].reshape(codes.shape[0], -1)

    def penalty(self) -> torch.Tensor | None:
        reg, self.reg = self.reg, None
        return reg

    def finalize(self) -> None:
        with torch.no_grad():
            self.codes.copy_(self._assign(self.query, self.frequent))

    def storage(self) -> dict[str, np.ndarray]:
        frequent = self.frequent.numpy()
        bits = np.where(frequent, math.ceil(math.log2(self.choices)), math.ceil(math.log2(self.low_choices)))
        out = {"codebook": self.codebook.detach().numpy().astype(np.float32),
               "codes": packed_codes(self.codes.numpy(), bits)}
        if self.low_choices < self.choices:
            out["group"] = np.packbits(frequent)
        return out


class _CodeMethod(TableMethod):
    """Shared planning of DPQ and MGQE: the number of parts (a divisor of the dimension) is the
    largest whose codes and codebooks fit; a field is quantised only when that saves memory."""

    family = "inter-feature, dynamic encoding"

    def _choices(self) -> tuple[int, int, float]:
        """(codewords of frequent ids, codewords of the others, share of frequent ids)."""
        raise NotImplementedError

    def _field_bytes(self, vocab: int, dim: int, parts: int) -> int:
        high, low, top = self._choices()
        n_high = math.ceil(vocab * top) if low < high else vocab
        bits = n_high * parts * math.ceil(math.log2(high)) + (vocab - n_high) * parts * math.ceil(math.log2(low))
        flags = math.ceil(vocab / 8) if low < high else 0
        return math.ceil(bits / 8) + high * dim * FLOAT + flags

    def plan(self, schema: TableSchema) -> Plan:
        budget = self.budget(schema)
        full = [v * schema.dim * FLOAT for v in schema.vocab_sizes]
        options = [p for p in range(schema.dim, 0, -1) if schema.dim % p == 0]
        for parts in options:
            sizes = [min(f, self._field_bytes(v, schema.dim, parts)) for v, f in zip(schema.vocab_sizes, full)]
            if sum(sizes) <= budget:
                compressed = [s < f for s, f in zip(sizes, full)]
                return {"parts": parts, "compressed": compressed, "bytes": int(sum(sizes))}
        smallest = sum(min(f, self._field_bytes(v, schema.dim, 1)) for v, f in zip(schema.vocab_sizes, full))
        raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} is out of reach; one part per row needs "
                          f"{smallest} bytes (about {schema.full_bytes / smallest:.3g}x)")

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        high, low, top = self._choices()
        gen, scale = generator(seed), default_init_scale(schema)
        fields: list[torch.nn.Module] = []
        for f, (v, compress) in enumerate(zip(schema.vocab_sizes, plan["compressed"])):
            if not compress:
                fields.append(PlainField(v, schema.dim, scale, gen))
                continue
            frequent = np.zeros(v, dtype=bool)
            frequent[schema.frequency_order(f)[:math.ceil(v * top)]] = True
            fields.append(QuantizedField(v, schema.dim, plan["parts"], high, low, frequent, scale, gen))
        return _CodesTable(schema, fields)


class _CodesTable(FieldwiseTable):
    def finalize(self) -> None:
        for table in self.fields:
            if isinstance(table, QuantizedField):
                table.finalize()


class DPQ(_CodeMethod):
    """Differentiable Product Quantization (Chen et al., ICML 2020), "vq" mode as in the benchmark's
    code: ``choices`` codewords per part (32 there), codes bit-packed at serving time."""

    name = "dpq"

    @attrs.frozen
    class Config(RatioConfig):
        choices: int = attrs.field(default=32, validator=[_v.instance_of(int), _v.ge(2), _v.le(65536)])

    def _choices(self) -> tuple[int, int, float]:
        return self.config.choices, self.config.choices, 1.0


class MGQE(_CodeMethod):
    """Multi-Granular Quantized Embeddings (Kang et al., RecSys 2020): DPQ where the ``top_share`` most
    frequent ids of a field choose among ``high_choices`` codewords and the others among the first
    ``low_choices`` (the benchmark's 256 / 64 / 10%)."""

    name = "mgqe"

    @attrs.frozen
    class Config(RatioConfig):
        high_choices: int = attrs.field(default=256, validator=[_v.instance_of(int), _v.ge(2), _v.le(65536)])
        low_choices: int = attrs.field(default=64, validator=[_v.instance_of(int), _v.ge(2)])
        top_share: float = attrs.field(default=0.1, converter=float, validator=[_v.gt(0), _v.le(1)])

        def __attrs_post_init__(self) -> None:
            if self.low_choices > self.high_choices:
                raise ValueError("low_choices must not exceed high_choices")

    def _choices(self) -> tuple[int, int, float]:
        return self.config.high_choices, self.config.low_choices, self.config.top_share


# -- Dedup ------------------------------------------------------------------------------------------------

class L2LSH:
    """E2LSH (Datar et al.): ``num_l`` bands of ``num_k`` hashes ``ceil((a.x + b) / r)``."""

    def __init__(self, dim: int, r: float, num_l: int, num_k: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.a = rng.normal(size=(dim, num_l * num_k))
        self.b = rng.uniform(0, r, size=num_l * num_k)
        self.r, self.num_l, self.num_k = r, num_l, num_k
        self.buckets: dict[tuple, set[int]] = defaultdict(set)

    def keys(self, vectors: np.ndarray) -> np.ndarray:
        return np.ceil((vectors @ self.a + self.b) / self.r).astype(np.int64)

    def _bands(self, key: np.ndarray):  # type: ignore[no-untyped-def]
        for band in range(self.num_l):
            yield (band, *key[band * self.num_k:(band + 1) * self.num_k].tolist())

    def insert(self, key: np.ndarray, item: int) -> None:
        for band in self._bands(key):
            self.buckets[band].add(item)

    def query(self, key: np.ndarray, min_hits: int = 1) -> list[int]:
        hits: dict[int, int] = defaultdict(int)
        for band in self._bands(key):
            for item in self.buckets.get(band, ()):
                hits[item] += 1
        return [item for item, count in hits.items() if count >= min_hits]


def deduplicate(blocks: np.ndarray, target_unique: int, *, fp: float, sim: float, seed: int,
                lsh_r: float = 0.09, lsh_l: int = 90) -> tuple[np.ndarray, dict[str, float]]:
    """Map blocks to representatives so that at most ``target_unique`` remain (the benchmark's
    procedure, then a fallback).

    Blocks are visited in ascending order of their 75th percentile; a block whose LSH candidates
    include an earlier kept block with at least ``sim`` of its values within ``fp`` maps to the most
    similar one. If that pass leaves more than ``target_unique`` blocks, the kept blocks nearest (L2)
    to another kept block are merged into it until the target is met (reported as ``fallback``).
    Returns ``remap`` (block -> representative block) and statistics.
    """
    n = len(blocks)
    remap = np.arange(n)
    needed = n - target_unique
    if needed <= 0:
        return remap, {"lsh_merged": 0, "fallback_merged": 0}
    lsh = L2LSH(blocks.shape[1], lsh_r, lsh_l, 1, seed)
    keys = lsh.keys(blocks)
    merged = 0
    for idx in np.argsort(np.percentile(blocks, 75, axis=1), kind="stable"):
        if merged >= needed:
            break
        best, best_sim = -1, -1.0
        for other in lsh.query(keys[idx]):
            similarity = float(np.mean(np.abs(blocks[idx] - blocks[other]) <= fp))
            if similarity >= sim and similarity > best_sim:
                best, best_sim = other, similarity
        if best >= 0:
            remap[idx] = best
            merged += 1
        else:
            lsh.insert(keys[idx], int(idx))
    lsh_merged = merged
    if merged < needed:  # fallback: merge the closest kept pairs
        kept = np.flatnonzero(remap == np.arange(n))
        vectors = blocks[kept]
        norms = (vectors ** 2).sum(1)
        distance = norms[:, None] + norms[None, :] - 2 * vectors @ vectors.T
        np.fill_diagonal(distance, np.inf)
        nearest = distance.argmin(1)
        order = np.argsort(distance[np.arange(len(kept)), nearest], kind="stable")
        alive = np.ones(len(kept), dtype=bool)
        for i in order:
            if merged >= needed:
                break
            j = nearest[i]
            if alive[i] and alive[j]:
                alive[i] = False
                remap[kept[i]] = kept[j]
                merged += 1
        while merged < needed:  # pairs exhausted: merge into the first survivor
            survivors = np.flatnonzero(alive)
            i, j = survivors[-1], survivors[0]
            alive[i] = False
            remap[kept[i]] = kept[j]
            merged += 1
    for _ in range(n):  # resolve chains to their final representative
        chained = remap[remap]
        if np.array_equal(chained, remap):
            break
        remap = chained
    return remap, {"lsh_merged": lsh_merged, "fallback_merged": merged - lsh_merged}


class DedupTable(EmbeddingTable):
    """Rows grouped into blocks of ``block_rows``; blocks share storage through ``block_map``."""

    def __init__(self, schema: TableSchema, block_rows: int, unique_blocks: int, n_blocks: int) -> None:
        super().__init__(schema)
        self.block_rows = block_rows
        self.sparse_table("weight", torch.nn.Parameter(torch.zeros(unique_blocks * block_rows, schema.dim)))
        self.register_buffer("block_map", torch.zeros(n_blocks, dtype=torch.int64))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        block = torch.div(ids, self.block_rows, rounding_mode="floor")
        rows = self.block_map[block] * self.block_rows + torch.remainder(ids, self.block_rows)
        return self.lookup(self.weight, rows)

    def storage(self) -> dict[str, np.ndarray]:
        return {"blocks": self.weight.detach().numpy().astype(np.float32),
                "block_map": self.block_map.numpy().astype(np.int32)}


class Dedup(TableMethod):
    """Deduplication (Zhou et al., "Serving deep learning models with deduplication from relational
    databases", VLDB 2022; the benchmark's Dedup): train the full table, split it into blocks of
    ``block_rows`` rows, map near-duplicate blocks (LSH candidates, ``sim`` share of values within
    ``fp``: the benchmark's 0.7 / 0.01, r = 0.09, 90 bands) onto one stored block until the budget is
    met, then fine-tune the shared blocks. Stored: the unique blocks and an int32 block map.
    """

    name = "dedup"
    family = "inter-feature, dynamic encoding"

    @attrs.frozen
    class Config(RatioConfig):
        block_rows: int = attrs.field(default=16, validator=[_v.instance_of(int), _v.ge(1)])
        sim: float = attrs.field(default=0.7, converter=float, validator=[_v.ge(0), _v.le(1)])
        fp: float = attrs.field(default=0.01, converter=float, validator=_v.gt(0))

    def plan(self, schema: TableSchema) -> Plan:
        block = self.config.block_rows
        n_blocks = math.ceil(schema.n_features / block)
        budget = self.budget(schema)
        if schema.full_bytes <= budget:
            return {"block_rows": block, "n_blocks": n_blocks, "unique_blocks": None, "bytes": schema.full_bytes}
        block_bytes = block * schema.dim * FLOAT
        unique = (budget - n_blocks * 4) // block_bytes
        if unique < 1:
            raise BudgetError(f"{self.name}: ratio {self.config.ratio:g} is out of reach; the block map alone "
                              f"takes {n_blocks * 4} bytes and one block {block_bytes}")
        return {"block_rows": block, "n_blocks": n_blocks, "unique_blocks": int(min(unique, n_blocks)),
                "bytes": int(min(unique, n_blocks) * block_bytes + n_blocks * 4)}

    def build(self, schema: TableSchema, plan: Plan, seed: int) -> EmbeddingTable:
        if plan["unique_blocks"] is None:
            return FullTable(schema, seed)
        return DedupTable(schema, plan["block_rows"], plan["unique_blocks"], plan["n_blocks"])

    def fit(self, run: TableRun) -> FittedTable:
        schema = run.schema
        plan = self.plan(schema)
        warm = run.new_model(FullTable(schema, run.seed))
        logs = {"warmup": run.train(warm, label=f"{self.name} warm-up")}
        if plan["unique_blocks"] is None:
            self.fitted = FittedTable(self, warm, plan, logs)
            return self.fitted
        block, n_blocks, unique = plan["block_rows"], plan["n_blocks"], plan["unique_blocks"]
        table = warm.table.weight.detach().numpy()
        padded = np.zeros((n_blocks * block, schema.dim), dtype=np.float32)
        padded[:len(table)] = table
        blocks = padded.reshape(n_blocks, block * schema.dim)
        remap, stats = deduplicate(blocks, unique, fp=self.config.fp, sim=self.config.sim, seed=run.seed)
        representatives, slot = np.unique(remap, return_inverse=True)
        dedup = DedupTable(schema, block, len(representatives), n_blocks)
        with torch.no_grad():
            dedup.weight.copy_(torch.from_numpy(blocks[representatives].reshape(-1, schema.dim)))
            dedup.block_map.copy_(torch.from_numpy(slot.astype(np.int64)))
        plan = {**plan, "unique_blocks": int(len(representatives)),
                "bytes": int(len(representatives) * block * schema.dim * FLOAT + n_blocks * 4)}
        model = run.new_model(dedup)
        inherit_network(warm, model)
        logs["finetune"] = run.train(model, label=f"{self.name} fine-tune")
        self.fitted = FittedTable(self, model, plan, logs, stats)
        return self.fitted


def inherit_network(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy the non-table weights of ``source`` into ``target`` (same architecture)."""
    state = {k: v for k, v in source.state_dict().items() if not k.startswith("table.")}
    missing = target.load_state_dict(state, strict=False)
    unexpected = [k for k in missing.unexpected_keys]
    if unexpected:
        raise ValueError(f"network weights do not match: {unexpected}")
