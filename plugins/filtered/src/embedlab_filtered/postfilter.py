"""``postfilter``: search any installed index without the filter, drop the documents that fail
it, and search deeper until ``k`` pass (or the whole index was searched)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab import validators as v
from embedlab.embeddings import Embeddings
from embedlab.errors import ConfigError, UnknownComponentError
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Filter, Index
from embedlab.ranking import SearchResult
from embedlab_filtered.base import FilteredIndex, n_rows, take_rows
from embedlab_filtered.masks import MaskSet

INNER_DIR = "inner"


def _index_name(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{attribute.name} must be the registered name of an index such as 'exact' "
                         f"or 'faiss', got {value!r}")


def _params(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not all(isinstance(key, str) for key in value):
        raise ValueError(f"{attribute.name} must map parameter names (strings) to values, got {value!r}")


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"index_params must be a mapping such as {{'metric': 'cosine'}}, got {value!r}")
    return dict(value)


def create_inner(name: str, params: Mapping[str, Any]) -> Index:
    """The unfiltered index ``name`` built through the registry; a ConfigError names the problem."""
    from embedlab import create

    try:
        inner = create("index", name, **params)
    except UnknownComponentError as error:
        raise ConfigError(f"postfilter: inner index {name!r} is not installed ({error})") from None
    if not isinstance(inner, Index):
        raise ConfigError(f"postfilter: {name!r} does not implement the Index protocol")
    return inner


class PostfilterIndex(FilteredIndex):
    """Search-then-filter over any installed index (default: the core exact index).

    A query whose filter lets ``p`` of the ``n`` documents through first asks the inner index
    for ``k'`` results, the first ``k * growth**j`` at least ``oversample * k * n / p`` (the
    classic ``k / selectivity``, rounded up the ladder so that queries share inner searches),
    keeps those that pass, and while fewer than ``min(k, p)`` passed asks again one rung higher,
    until ``k'`` reaches ``max_k`` (default: ``n``, the whole index) or the inner index returns
    fewer than ``k'`` documents (it can reach no more). With an exact inner index the result is
    exact; with an ANN index (``index="faiss", index_params={"factory": "HNSW32"}``) the cost
    grows like ``k / selectivity``, which is where post-filtering collapses.
    ``last_depths`` holds the final ``k'`` of every query of the last search.
    """

    name = "postfilter"

    @attrs.frozen
    class Config:
        """``index``/``index_params``: the inner (unfiltered) index and its parameters;
        ``oversample``: factor on the first ``k / selectivity`` request; ``growth``: factor
        applied to ``k'`` while too few results pass; ``max_k``: largest ``k'`` (None: all)."""

        index: str = attrs.field(default="exact", validator=_index_name)
        index_params: dict = attrs.field(factory=dict, converter=_mapping, validator=_params)
        oversample: float = attrs.field(default=1.0, validator=v.positive_real)
        growth: float = attrs.field(default=2.0, validator=v.real_in(1.0, low_open=True))
        max_k: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._inner = create_inner(self.config.index, self.config.index_params)
        self.last_depths = np.zeros(0, np.int64)

    @property
    def inner(self) -> Index:
        """The unfiltered index that is searched."""
        return self._inner

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Build the inner index on these documents (positions 0..n-1); keep the attributes."""
        inner = create_inner(self.config.index, self.config.index_params)
        inner.build(embeddings)
        self._attributes = self._columns(attributes, len(inner), adding=False)
        self._inner = inner

    def add(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents to the inner index (with the same attribute columns as the build)."""
        if not len(self):
            self.build(embeddings, attributes)
            return
        columns = self._columns(attributes, n_rows(embeddings), adding=True)
        self._inner.add(embeddings)
        self._append(columns)

    def __len__(self) -> int:
        return len(self._inner)

    @property
    def memory_bytes(self) -> int:
        """The inner index's memory and the attribute columns."""
        return int(self._inner.memory_bytes) + self._attribute_bytes

    def search(self, queries: Embeddings, k: int, filter: Filter = None) -> SearchResult:
        """Top-``k`` passing documents per query, in the inner index's order."""
        k = self._check_search(k)
        n_queries, n_docs = n_rows(queries), len(self)
        masks = self._masks(filter, n_queries)
        if masks.masks is None:
            self.last_depths = np.full(n_queries, k, np.int64)
            return self._inner.search(queries, k)
        limit = min(n_docs, self.config.max_k or n_docs)
        passing = masks.passing
        wanted = np.minimum(passing, k)
        rung = self._first_rungs(k, n_docs / np.maximum(passing, 1))
        result = SearchResult.empty(n_queries, k)
        depth = np.zeros(n_queries, np.int64)
        pending = np.flatnonzero(passing > 0)
        while pending.size:
            depth[pending] = self._depth(k, rung[pending], limit)
            done = np.zeros(pending.size, dtype=bool)
            for value in np.unique(depth[pending]):
                at = np.flatnonzero(depth[pending] == value)
                done[at] = self._round(queries, pending[at], int(value), k, masks, wanted, limit, result)
            rung[pending] += 1
            pending = pending[~done]
        self.last_depths = depth
        return result

    def _first_rungs(self, k: int, inverse_selectivity: np.ndarray) -> np.ndarray:
        """Depths climb the ladder ``k * growth**rung``, so that queries of similar selectivity
        share inner searches; the first rung reaches ``oversample * k / selectivity``."""
        wanted = np.maximum(self.config.oversample * inverse_selectivity, 1.0)
        return np.ceil(np.log(wanted) / np.log(self.config.growth) - 1e-9).astype(np.int64)

    def _depth(self, k: int, rung: np.ndarray, limit: int) -> np.ndarray:
        depth = np.ceil(k * np.power(self.config.growth, rung.astype(np.float64)) - 1e-6)
        return np.minimum(depth, limit).astype(np.int64)

    def _round(self, queries: Embeddings, rows: np.ndarray, depth: int, k: int, masks: MaskSet,
               wanted: np.ndarray, limit: int, result: SearchResult) -> np.ndarray:
        """Search ``rows`` at depth ``depth``; store their first ``k`` passing results and say
        which rows are finished."""
        found = self._inner.search(take_rows(queries, rows), depth)
        positions = found.indices
        valid = positions >= 0
        assert masks.masks is not None
        passes = valid & masks.masks[masks.rows[rows][:, None], np.where(valid, positions, 0)]
        rank = np.cumsum(passes, axis=1)
        keep = passes & (rank <= k)
        slot = np.where(keep, rank - 1, k)  # k: a spare column that is dropped
        scores = np.full((rows.size, k + 1), -np.inf, np.float32)
        indices = np.full((rows.size, k + 1), -1, np.int64)
        line = np.broadcast_to(np.arange(rows.size)[:, None], slot.shape)
        scores[line[keep], slot[keep]] = found.scores[keep]
        indices[line[keep], slot[keep]] = positions[keep]
        result.scores[rows], result.indices[rows] = scores[:, :k], indices[:, :k]
        exhausted = (depth >= limit) | (valid.sum(axis=1) < depth)
        return (rank[:, -1] >= wanted[rows]) | exhausted

    def save(self, path: str | Path) -> None:
        """Attribute columns here, the inner index in ``path/inner`` (saved by the inner index)."""
        arrays, meta = self._attribute_state()
        save_state(path, self, arrays=arrays, meta=meta, parts={INNER_DIR: self._inner})

    @classmethod
    def load(cls, path: str | Path) -> PostfilterIndex:
        """Load a saved index and its inner index (through the registry)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        index = state.build(cls)
        inner = state.part(INNER_DIR, kind="index")
        if getattr(inner, "name", None) != index.config.index:
            raise state.error(f"the saved inner index is {getattr(inner, 'name', None)!r}, the "
                              f"config says {index.config.index!r}")
        index._inner = inner
        index._load_attributes(state)
        return index
