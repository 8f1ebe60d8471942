"""``prefilter``: evaluate the filter first, then search the passing documents exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab import validators as v
from embedlab.embeddings import Embeddings
from embedlab.index.exact import METRICS, ExactIndex
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Filter
from embedlab.ranking import SearchResult
from embedlab_filtered.base import FilteredIndex, n_rows, take_rows

EXACT_DIR = "exact"
#: A mask passing at most this fraction of the documents some query may return is searched on
#: its own; the queries with denser masks share one scan of the union of their masks (batched
#: matrix products beat many small ones there).
GROUP_FRACTION = 0.25


class PrefilterIndex(FilteredIndex):
    """Exact top-k over the documents that pass the filter; exact by construction, cost
    proportional to the number of passing documents (the core :class:`ExactIndex` scores them).

    Queries are grouped by distinct mask, so selective per-query filters each scan only their
    own passing documents (the exact index alone scans the union of all masks); queries with
    dense masks are scored together over the union. Any embedding kind works.

    >>> index = PrefilterIndex(metric="cosine")
    >>> index.build(np.eye(3, dtype=np.float32), attributes={"lang": np.array(["en", "fr", "en"])})
    >>> index.search(np.array([[1.0, 0.0, 0.5]]), k=2, filter={"lang": "en"}).indices
    array([[0, 2]])
    """

    name = "prefilter"

    @attrs.frozen
    class Config:
        """``metric``: "ip", "cosine" or "l2" (as the exact index); ``block_size``: documents
        scored per block."""

        metric: str = attrs.field(default="ip", validator=v.choice(*METRICS))
        block_size: int = attrs.field(default=8192, validator=v.positive_int)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._exact = ExactIndex(metric=self.config.metric, block_size=self.config.block_size)

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these documents (positions 0..n-1) and attribute columns."""
        exact = ExactIndex(self._exact.config)
        exact.build(embeddings)
        self._attributes = self._columns(attributes, len(exact), adding=False)
        self._exact = exact

    def add(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents (with the same attribute columns as the build)."""
        if not len(self):
            self.build(embeddings, attributes)
            return
        columns = self._columns(attributes, n_rows(embeddings), adding=True)
        self._exact.add(embeddings)
        self._append(columns)

    def __len__(self) -> int:
        return len(self._exact)

    @property
    def memory_bytes(self) -> int:
        """Stored vectors and attribute columns."""
        return self._exact.memory_bytes + self._attribute_bytes

    def search(self, queries: Embeddings, k: int, filter: Filter = None) -> SearchResult:
        """Top-``k`` passing documents per query; rows whose filter passes fewer than ``k``
        documents are padded with ``-1`` / ``-inf``."""
        k = self._check_search(k)
        n_queries = n_rows(queries)
        masks = self._masks(filter, n_queries)
        if masks.masks is None or masks.masks.shape[0] == 1:
            return self._exact.search(queries, k, filter=masks.mask(0))
        result = SearchResult.empty(n_queries, k)
        union = int(masks.masks.any(axis=0).sum())
        dense = masks.counts > GROUP_FRACTION * union
        for group, rows in masks.groups():
            if masks.counts[group] and not dense[group]:
                self._fill(result, rows, self._exact.search(take_rows(queries, rows), k, filter=masks.mask(group)))
        rows = np.flatnonzero(dense[masks.rows])
        if rows.size:
            mask = masks.masks[masks.rows[rows]]
            self._fill(result, rows, self._exact.search(take_rows(queries, rows), k, filter=mask))
        return result

    @staticmethod
    def _fill(result: SearchResult, rows: np.ndarray, part: SearchResult) -> None:
        result.scores[rows], result.indices[rows] = part.scores, part.indices

    def save(self, path: str | Path) -> None:
        """Attribute columns here, the exact index (vectors) in ``path/exact``."""
        arrays, meta = self._attribute_state()
        save_state(path, self, arrays=arrays, meta=meta, parts={EXACT_DIR: self._exact})

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> PrefilterIndex:
        """Load a saved index (``mmap=True`` memory-maps the stored vectors)."""
        state = load_state(path, kind=cls.kind, name=cls.name, mmap=mmap)
        index = state.build(cls)
        index._exact = state.part(EXACT_DIR, cls=ExactIndex, mmap=mmap)
        if index._exact.config.metric != index.config.metric:
            raise state.error(f"the saved exact index uses metric {index._exact.config.metric!r}, the config "
                              f"{index.config.metric!r}")
        index._load_attributes(state)
        return index
