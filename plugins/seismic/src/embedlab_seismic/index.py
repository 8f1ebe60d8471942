"""The ``seismic`` index: approximate top-k inner-product search over learned sparse vectors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.attributes import append_columns, check_columns, columns_bytes, columns_from_state, columns_to_state
from embedlab.components import Component, make_config
from embedlab.embeddings import as_sparse
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError
from embedlab.filters import resolve_filter
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Filter
from embedlab.ranking import MISSING_SCORE, SearchResult
from embedlab_seismic.build import build_arrays
from embedlab_seismic.config import MAX_DIM, SeismicConfig
from embedlab_seismic.search import search_range
from embedlab_seismic.state import SeismicArrays

OWNER = "seismic index"


def check_sparse(x: object, *, dim: int | None, name: str, allow_empty: bool) -> sp.csr_matrix:
    """Canonical float32 CSR with int32 term ids and no stored zeros.

    Duplicate term ids in a row are summed (:func:`embedlab.embeddings.as_sparse`); term ids
    outside ``[0, vocabulary)`` raise :class:`InvalidInputError` naming the row.
    """
    if sp.issparse(x) and x.format in ("csr", "csc"):  # other formats check their coordinates
        limit = x.shape[1] if x.format == "csr" else x.shape[0]
        bad = np.flatnonzero((x.indices < 0) | (x.indices >= limit))
        if bad.size:
            outer = int(np.searchsorted(x.indptr, bad[0], side="right") - 1)
            row, term = (outer, int(x.indices[bad[0]])) if x.format == "csr" else (int(x.indices[bad[0]]), outer)
            raise InvalidInputError(f"{name}: row {row} has term id {term} outside the vocabulary "
                                    f"[0, {x.shape[1]}) or the rows [0, {x.shape[0]}); fix the ids or "
                                    "the matrix shape")
    matrix = as_sparse(x, dim=dim, name=name, allow_empty=allow_empty)
    if matrix.shape[1] == 0 or matrix.shape[1] > MAX_DIM:
        raise InvalidInputError(f"{name}: vocabulary size {matrix.shape[1]} must be in [1, {MAX_DIM}]")
    matrix.eliminate_zeros()
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    matrix.indptr = matrix.indptr.astype(np.int64, copy=False)
    return matrix


class SeismicIndex(Component):
    """Seismic (Bruch et al., SIGIR 2024): pruned, blocked posting lists with quantised block
    summaries; queries skip blocks whose summary score cannot beat the current top-k.

    Scores are inner products (higher is better), ranks ties by lower position. Documents that
    share no term with the query's ``query_cut`` largest entries are never returned, so rows may
    hold fewer than ``k`` results (padded with ``-1`` / ``-inf``); a query with no terms gets an
    empty row. Building (and :meth:`add`, which rebuilds) is deterministic for a given ``seed``.

    >>> index = SeismicIndex(n_postings=100)
    >>> index.build(sp.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 1.0]], np.float32)))
    >>> index.search(sp.csr_matrix(np.array([[0.0, 1.0, 1.0]], np.float32)), k=2).indices
    array([[1, 0]])
    """

    kind = "index"
    name = "seismic"
    Config = SeismicConfig

    def __init__(self, config: SeismicConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._state: SeismicArrays | None = None
        self._attributes: dict[str, np.ndarray] = {}

    # -- contents -------------------------------------------------------------------------

    def build(self, embeddings: sp.csr_matrix, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Index these documents (positions 0..n-1), replacing any previous contents."""
        documents = check_sparse(embeddings, dim=None, name="seismic documents", allow_empty=False)
        self._attributes = check_columns(attributes, documents.shape[0], owner=OWNER)
        self._state = build_arrays(documents, self.config)

    def add(self, embeddings: sp.csr_matrix, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents; the pruning and blocks are global, so the index is rebuilt."""
        if self._state is None:
            self.build(embeddings, attributes)
            return
        new = check_sparse(embeddings, dim=self._state.dim, name="seismic documents", allow_empty=False)
        columns = check_columns(attributes, new.shape[0], self._attributes, owner=OWNER)
        documents = sp.vstack([self._state.documents(), new], format="csr")
        merged = check_sparse(documents, dim=self._state.dim, name="seismic documents", allow_empty=False)
        self._state = build_arrays(merged, self.config)
        self._attributes = append_columns(self._attributes, columns)

    def __len__(self) -> int:
        return 0 if self._state is None else self._state.n_docs

    @property
    def dim(self) -> int:
        """Vocabulary size of the indexed documents (queries must match it)."""
        return self._built().dim

    @property
    def memory_bytes(self) -> int:
        """Bytes of the forward index, posting lists, summaries and attribute columns."""
        stored = 0 if self._state is None else self._state.nbytes
        return stored + columns_bytes(self._attributes)

    # -- search ---------------------------------------------------------------------------

    def search(self, queries: sp.csr_matrix, k: int, filter: Filter = None, **overrides: Any) -> SearchResult:
        """Top-``k`` documents per query. ``overrides`` may set the query-time parameters
        ``query_cut``, ``heap_factor``, ``first_sorted`` or ``n_threads`` for this call only.
        ``filter`` takes the forms of :func:`embedlab.filters.resolve_filter`; filtered-out
        documents are skipped when scored (the traversal itself is unchanged)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InvalidInputError(f"seismic index: k must be a positive integer, got {k!r}")
        state = self._built()
        params = self._query_params(overrides)
        q = check_sparse(queries, dim=state.dim, name="seismic queries", allow_empty=True)
        n_queries, k = q.shape[0], int(k)
        mask = resolve_filter(filter, self._attributes, state.n_docs, n_queries)
        mask = np.zeros((0, state.n_docs), np.bool_) if mask is None else np.ascontiguousarray(np.atleast_2d(mask))
        scores = np.full((n_queries, k), MISSING_SCORE, dtype=np.float32)
        docs = np.full((n_queries, k), -1, dtype=np.int64)
        q_vals = q.data.astype(np.float32, copy=False)
        max_blocks = state.max_blocks

        def run(bounds: tuple[int, int]) -> None:
            search_range(bounds[0], bounds[1], q.indptr, q.indices, q_vals, k, params.query_cut,
                         float(params.heap_factor), params.first_sorted, state.doc_ptr, state.doc_entries,
                         state.list_blocks, state.block_ptr, state.postings,
                         state.block_min, state.block_step, state.list_summary_ptr, state.summary_terms,
                         state.list_entry_ptr, state.summary_ptr, state.summary_blocks,
                         state.summary_codes, mask, max_blocks, scores, docs)

        cuts = np.linspace(0, n_queries, min(params.n_threads, max(n_queries, 1)) + 1).astype(int)
        ranges = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
        if len(ranges) <= 1:
            for bounds in ranges:
                run(bounds)
        else:
            with ThreadPoolExecutor(len(ranges)) as pool:
                list(pool.map(run, ranges))
        return SearchResult(scores, docs)

    def _query_params(self, overrides: Mapping[str, Any]) -> SeismicConfig:
        unknown = sorted(set(overrides) - set(SeismicConfig.QUERY_FIELDS))
        if unknown:
            raise ConfigError(f"seismic index: search() cannot override {', '.join(unknown)}; query-time "
                              f"parameters are {', '.join(SeismicConfig.QUERY_FIELDS)} (others need a rebuild)")
        if not overrides:
            return self.config
        return make_config(SeismicConfig, {**attrs.asdict(self.config), **overrides}, self.name)

    def _built(self) -> SeismicArrays:
        if self._state is None:
            raise NotFittedError("seismic index: the index is empty; call build(documents) first")
        return self._state

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the config, every index array (.npy) and the attribute columns."""
        state = self._built()
        arrays = dict(state.arrays())
        column_arrays, columns = columns_to_state(self._attributes, owner=OWNER)
        arrays.update(column_arrays)
        save_state(path, self, arrays=arrays, meta={"dim": state.dim, "attributes": columns})

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> SeismicIndex:
        """Load a saved index (checksums and structure verified); ``mmap=True`` memory-maps it."""
        saved = load_state(path, kind=cls.kind, name=cls.name, mmap=mmap)
        index = saved.build(cls)
        index._state = SeismicArrays.from_arrays(saved.value("dim", int, minimum=0, maximum=1 << 31), saved.arrays)
        index._attributes = columns_from_state(saved, len(index))
        return index
