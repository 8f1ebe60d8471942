"""``acorn``: ACORN-gamma (Patel et al., SIGMOD 2024), a predicate-agnostic HNSW-style graph
searched under any filter, with numba kernels (:mod:`embedlab_filtered.graph`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np
from tqdm.auto import tqdm

from embedlab import validators as v
from embedlab.embeddings import Embeddings, as_dense
from embedlab.errors import InvalidInputError, StateError
from embedlab.index.exact import METRICS
from embedlab.index.topk import TopK
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Filter
from embedlab.ranking import SearchResult
from embedlab_filtered.base import FilteredIndex
from embedlab_filtered.graph.build import insert
from embedlab_filtered.graph.search import search as graph_search
from embedlab_filtered.masks import MaskSet

#: Nodes inserted per kernel call (the progress bar advances between calls).
INSERT_CHUNK = 4096
#: Documents above which building shows a progress bar.
PROGRESS_DOCS = 20_000
#: Queries per parallel work item of the search kernel.
QUERY_CHUNK = 8
#: Highest level a node can be drawn at.
MAX_LEVEL = 30


@attrs.frozen
class AcornConfig:
    """``M``: graph degree (upper levels hold ``M * gamma`` neighbours, level 0
    ``M_beta + 1.5 M``); ``gamma``: neighbour-expansion factor (about 1 / the smallest
    selectivity to serve; 1 gives ACORN-1); ``M_beta``: level-0 neighbours always kept by the
    compression (``<= 2 M gamma``); ``ef_construction``: build beam (None: ``M * gamma``);
    ``ef_search``: search beam (at least ``k``); ``metric``: ip, cosine or l2; ``seed``: level
    draws; ``exact_below``: a query whose filter passes at most this many documents is answered
    by exact search over them instead of the graph (default 0: never, so ``acorn`` is ACORN;
    a positive value adds an exact fallback for predicates too selective for ``gamma``, which
    benchmarks report as a method of its own)."""

    M: int = attrs.field(default=32, validator=v.int_in(2))
    gamma: int = attrs.field(default=6, validator=v.positive_int)
    M_beta: int = attrs.field(default=32, validator=v.positive_int)
    ef_construction: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))
    ef_search: int = attrs.field(default=64, validator=v.positive_int)
    metric: str = attrs.field(default="ip", validator=v.choice(*METRICS))
    seed: int = attrs.field(default=0, validator=v.seed)
    exact_below: int = attrs.field(default=0, validator=v.non_negative_int)

    def __attrs_post_init__(self) -> None:
        if self.M_beta > 2 * self.M * self.gamma:
            raise v.InvalidValue("M_beta", f"must be at most 2 * M * gamma ({2 * self.M * self.gamma}), "
                                 f"got {self.M_beta}")

    @property
    def cap0(self) -> int:
        """Level-0 neighbour slots per node."""
        return int(self.M_beta + 1.5 * self.M)

    @property
    def cap_upper(self) -> int:
        """Neighbour slots per node and upper level."""
        return self.M * self.gamma

    @property
    def beam(self) -> int:
        return self.ef_construction or self.M * self.gamma


class AcornIndex(FilteredIndex):
    """ACORN-gamma filtered approximate search over dense vectors.

    The graph is built without looking at attributes, with HNSW levels, a beam of
    ``M * gamma`` and compressed level-0 lists; any filter (:func:`embedlab.filters.resolve_filter`)
    is applied during the search, which computes distances only for passing documents and
    reaches them through neighbours' neighbours when direct neighbours fail. Built sequentially
    from a seed: the same data and config give the same graph and results.

    >>> index = AcornIndex(M=8, gamma=4, M_beta=8)
    >>> index.build(np.eye(4, dtype=np.float32), attributes={"n": np.arange(4)})
    >>> index.search(np.eye(4, dtype=np.float32)[:1], k=2, filter={"n": {"gte": 2}}).indices.shape
    (1, 2)
    """

    name = "acorn"
    Config = AcornConfig

    def __init__(self, config: AcornConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._reset()

    def _reset(self) -> None:
        self._attributes = {}
        self._vectors = np.zeros((0, 0), np.float32)
        self._levels = np.zeros(0, np.int32)
        self._offsets = np.zeros(1, np.int64)
        self._neighbors = np.zeros(0, np.int32)
        self._entry, self._max_level = -1, -1

    # -- contents -------------------------------------------------------------------------

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these documents (positions 0..n-1) and build the graph."""
        vectors = self._prepare(embeddings, None, "documents")
        columns = self._columns(attributes, vectors.shape[0], adding=False)
        self._reset()
        self._insert(vectors)
        self._attributes = columns

    def add(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Insert documents after the existing ones (same attribute columns as the build)."""
        if not len(self):
            self.build(embeddings, attributes)
            return
        vectors = self._prepare(embeddings, self.dim, "documents")
        columns = self._columns(attributes, vectors.shape[0], adding=True)
        self._insert(vectors)
        self._append(columns)

    def _prepare(self, embeddings: Embeddings, dim: int | None, name: str) -> np.ndarray:
        if not isinstance(embeddings, (np.ndarray, list, tuple)):
            raise InvalidInputError(f"acorn index: {name} must be dense float vectors, got "
                                    f"{type(embeddings).__name__}")
        vectors = as_dense(embeddings, dim=dim, name=f"acorn {name}", allow_empty=name == "queries")
        if self.config.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1).astype(np.float32)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _insert(self, vectors: np.ndarray) -> None:
        c = self.config
        first = len(self)
        rng = np.random.default_rng([c.seed, first])
        draws = -np.log1p(-rng.random(vectors.shape[0])) / math.log(c.M)
        levels = np.minimum(draws.astype(np.int32), MAX_LEVEL)
        slots = c.cap0 + levels.astype(np.int64) * c.cap_upper
        self._vectors = vectors if not first else np.concatenate([self._vectors, vectors])
        self._levels = np.concatenate([self._levels, levels])
        self._offsets = np.concatenate([self._offsets, self._offsets[-1] + np.cumsum(slots)])
        self._neighbors = np.concatenate([self._neighbors, np.full(int(slots.sum()), -1, np.int32)])
        total = len(self._vectors)
        with tqdm(total=total - first, desc="acorn build", unit="doc", leave=False,
                  disable=total - first < PROGRESS_DOCS) as bar:
            for start in range(first, total, INSERT_CHUNK):
                stop = min(start + INSERT_CHUNK, total)
                self._entry, self._max_level = insert(
                    self._vectors, c.metric == "l2", self._levels, self._offsets, self._neighbors, c.cap0,
                    c.cap_upper, c.M_beta, c.beam, start, stop, self._entry, self._max_level)
                bar.update(stop - start)

    def __len__(self) -> int:
        return int(self._vectors.shape[0])

    @property
    def dim(self) -> int:
        return int(self._vectors.shape[1])

    @property
    def memory_bytes(self) -> int:
        """Vectors, graph arrays and attribute columns."""
        arrays = (self._vectors, self._levels, self._offsets, self._neighbors)
        return sum(int(a.nbytes) for a in arrays) + self._attribute_bytes

    # -- search ---------------------------------------------------------------------------

    def search(self, queries: Embeddings, k: int, filter: Filter = None, *, ef_search: int | None = None,
               exact_below: int | None = None) -> SearchResult:
        """Top-``k`` passing documents per query (approximate); ``ef_search`` and
        ``exact_below`` override the config for this call (neither changes the graph). Rows
        with fewer results are padded with -1 / -inf."""
        k = self._check_search(k)
        c = self.config
        ef = max(k, c.ef_search if ef_search is None else _search_parameter("ef_search", ef_search, 1))
        below = c.exact_below if exact_below is None else _search_parameter("exact_below", exact_below, 0)
        vectors = self._prepare(queries, self.dim, "queries")
        masks = self._masks(filter, vectors.shape[0])
        result = SearchResult.empty(vectors.shape[0], k)
        passing = masks.passing
        exact = (passing > 0) & (passing <= below)
        graph = (passing > 0) & ~exact
        if graph.any():
            table = np.ones((1, len(self)), bool) if masks.masks is None else masks.masks
            graph_search(self._vectors, c.metric == "l2", vectors, k, ef, table, masks.rows, graph,
                         self._offsets, self._neighbors, c.cap0, c.cap_upper, c.M, c.M_beta, c.gamma,
                         self._entry, self._max_level, QUERY_CHUNK, result.scores, result.indices)
        if exact.any():
            self._exact(vectors, masks, exact, k, result)
        return result

    def _exact(self, vectors: np.ndarray, masks: MaskSet, chosen: np.ndarray, k: int,
               result: SearchResult) -> None:
        """Exact top-k over the passing documents for the ``chosen`` queries."""
        for group, rows in masks.groups():
            rows = rows[chosen[rows]]
            if not rows.size:
                continue
            mask = masks.mask(group)
            positions = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
            docs = self._vectors[positions]
            scores = vectors[rows] @ docs.T
            if self.config.metric == "l2":
                scores = -((vectors[rows] ** 2).sum(axis=1)[:, None] - 2 * scores + (docs ** 2).sum(axis=1))
            top = TopK(rows.size, k)
            top.push(np.ascontiguousarray(scores, dtype=np.float32), positions)
            result.scores[rows], result.indices[rows] = top.scores, top.positions

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Vectors, levels, offsets and neighbour slots (CSR-like) and attribute columns."""
        if not len(self):
            raise InvalidInputError("acorn index: nothing to save; call build() first")
        arrays, meta = self._attribute_state()
        arrays.update(vectors=self._vectors, levels=self._levels, offsets=self._offsets,
                      neighbors=self._neighbors)
        save_state(path, self, arrays=arrays,
                   meta={**meta, "entry": self._entry, "max_level": self._max_level})

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> AcornIndex:
        """Load a saved index, checking that the graph arrays are consistent."""
        state = load_state(path, kind=cls.kind, name=cls.name, mmap=mmap)
        index = state.build(cls)
        names = ("vectors", "levels", "offsets", "neighbors")
        absent = [name for name in names if name not in state.arrays]
        if absent:
            raise StateError(f"{path}: saved acorn index lacks {', '.join(a + '.npy' for a in absent)}")
        vectors, levels, offsets, neighbors = (state.arrays[name] for name in names)
        entry, max_level = state.meta.get("entry"), state.meta.get("max_level")
        _check_graph(index.config, vectors, levels, offsets, neighbors, entry, max_level, path)
        index._vectors, index._levels, index._offsets, index._neighbors = vectors, levels, offsets, neighbors
        index._entry, index._max_level = int(entry), int(max_level)
        index._load_attributes(state)
        return index


def _search_parameter(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InvalidInputError(f"acorn index: {name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_graph(config: AcornConfig, vectors: np.ndarray, levels: np.ndarray, offsets: np.ndarray,
                 neighbors: np.ndarray, entry: Any, max_level: Any, path: str | Path) -> None:
    """:class:`StateError` unless the arrays form a graph the kernels can walk safely."""
    n = vectors.shape[0] if vectors.ndim == 2 else -1
    problems = []
    if vectors.dtype != np.float32 or n < 1 or not np.isfinite(vectors).all():
        problems.append(f"vectors {vectors.dtype} {vectors.shape}")
    elif levels.dtype != np.int32 or levels.shape != (n,) or (levels < 0).any():
        problems.append(f"levels {levels.dtype} {levels.shape}")
    elif offsets.dtype != np.int64 or offsets.shape != (n + 1,) or offsets[0] != 0 \
            or (np.diff(offsets) != config.cap0 + levels.astype(np.int64) * config.cap_upper).any():
        problems.append("offsets do not match the levels and the list capacities of the config")
    elif neighbors.dtype != np.int32 or neighbors.shape != (offsets[-1],) \
            or (neighbors < -1).any() or (neighbors >= n).any():
        problems.append("neighbor slots out of range")
    elif not isinstance(entry, int) or not isinstance(max_level, int) or not 0 <= entry < n \
            or levels[entry] != max_level or levels.max() != max_level:
        problems.append(f"entry point {entry!r} / top level {max_level!r}")
    if problems:
        raise StateError(f"{path}: corrupted acorn graph ({problems[0]})")

