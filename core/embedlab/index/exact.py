"""Exact (brute-force) top-k search over any embedding kind, with filters and compressors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import attrs
import numpy as np
from tqdm.auto import tqdm

from embedlab import validators as v
from embedlab.attributes import append_columns, check_columns, columns_bytes, columns_from_state, columns_to_state
from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind, Embeddings, count
from embedlab.errors import InvalidInputError
from embedlab.filters import resolve_filter
from embedlab.index.stores import STORES, DenseStore, Rows, Store, dimension, embedding_kind
from embedlab.index.topk import TopK
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Compressor, Filter
from embedlab.ranking import MISSING_SCORE, SearchResult
from embedlab.shards import ChunkStore

METRICS = ("ip", "cosine", "l2")
#: Largest (queries x documents) block of scores held at once (float32 entries).
SCORE_BUDGET = 1 << 23
#: Bytes of lookup tables held at once when a compressor scores codes through tables prepared per
#: query batch (:class:`~embedlab.protocols.PreparedCodeScorer`): 128 queries of PQ m=48, ksub=256.
PREPARED_TABLE_BUDGET = 6 << 20
#: Queries per prepared batch when the compressor does not report ``table_bytes_per_query``.
PREPARED_QUERY_BATCH = 128
#: Query-document pairs above which a progress bar is shown.
PROGRESS_PAIRS = 5 * 10**8
COMPRESSOR_DIR = "compressor"
OWNER = "exact index"


class ExactIndex(Component):
    """Exact top-k search: every query is scored against every (unfiltered) document.

    Dense and sparse embeddings use inner product (``metric="ip"``), cosine similarity or the
    negated squared L2 distance (``"l2"``); binary codes always use the negated Hamming
    distance (``metric`` is not used); multi-vector embeddings use MaxSim (sum over query vectors
    of the best document-vector inner product, ``"cosine"`` normalising every vector), and a
    document without vectors is never returned. Attribute columns given to ``build``/``add``
    serve the filters of :func:`embedlab.filters.resolve_filter`. Documents are scored
    ``block_size`` at a time and reduced to a running top-k, so memory stays bounded. Results
    are sorted by descending score, ties going to the lower document position; slots beyond
    the documents that pass the filter hold ``-1`` / ``-inf``.

    >>> index = ExactIndex(metric="cosine")
    >>> index.build(np.eye(3, dtype=np.float32), attributes={"lang": np.array(["en", "fr", "en"])})
    >>> index.search(np.array([[1.0, 0.0, 0.5]]), k=2, filter={"lang": "en"}).indices
    array([[0, 2]])
    """

    kind = "index"
    name = "exact"

    @attrs.frozen
    class Config:
        """``metric``: "ip", "cosine" or "l2"; ``block_size``: documents scored per block."""

        metric: str = attrs.field(default="ip", validator=v.choice(*METRICS))
        block_size: int = attrs.field(default=8192, validator=v.positive_int)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._store: Store | None = None
        self._attributes: dict[str, np.ndarray] = {}
        self._compressor: Compressor | None = None

    # -- contents -------------------------------------------------------------------------

    def use_compressor(self, compressor: Compressor) -> None:
        """Store ``compressor.encode(vectors)`` instead of float vectors (dense embeddings only).

        Call before :meth:`build`; ``compressor`` must be fitted. Search uses
        ``compressor.score`` when it is a :class:`~embedlab.protocols.CodeScorer` (taken to be
        the inner product with the decoded vectors), else decodes one block at a time.
        """
        if len(self):
            raise InvalidInputError("exact index: call use_compressor before build (the index "
                                    "already holds documents)")
        self._compressor = compressor

    @property
    def compressor(self) -> Compressor | None:
        """The compressor whose codes are stored (given with :meth:`use_compressor` or loaded with
        the index); None when the index holds the embeddings themselves."""
        return self._compressor

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these documents (positions 0..n-1)."""
        kind = embedding_kind(embeddings)
        if self._compressor is not None and kind is not EmbeddingKind.DENSE:
            raise InvalidInputError(f"exact index: a compressor needs dense embeddings, got {kind.value}")
        store = STORES[kind](self.config.metric, dimension(embeddings, kind),
                             **({"compressor": self._compressor} if kind is EmbeddingKind.DENSE else {}))
        store.append(embeddings)
        if not len(store):
            raise InvalidInputError("exact index: no documents to index (empty corpus)")
        self._attributes = check_columns(attributes, len(store), owner=OWNER)
        self._store = store

    def build_from_chunks(self, chunks: ChunkStore, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Same as ``build(chunks.gather(), attributes)``; dense vectors (or their codes) are read
        one chunk at a time into one preallocated array."""
        if chunks.kind is not EmbeddingKind.DENSE:
            self.build(chunks.gather(), attributes)
            return
        store = DenseStore(self.config.metric, chunks.dim, self._compressor)
        store.fill(chunks.chunks(), len(chunks))
        self._attributes = check_columns(attributes, len(store), owner=OWNER)
        self._store = store

    def add(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents after the existing ones (attribute columns must match the build)."""
        if self._store is None:
            self.build(embeddings, attributes)
            return
        kind = embedding_kind(embeddings)
        if kind is not self._store.kind:
            raise InvalidInputError(f"exact index: cannot add {kind.value} embeddings to an index of "
                                    f"{self._store.kind.value} embeddings")
        new = check_columns(attributes, count(embeddings), self._attributes, owner=OWNER)
        self._store.append(embeddings)
        self._attributes = append_columns(self._attributes, new)

    def __len__(self) -> int:
        return 0 if self._store is None else len(self._store)

    @property
    def memory_bytes(self) -> int:
        """Bytes of the stored vectors (or codes), norms and attribute columns."""
        stored = 0 if self._store is None else self._store.memory_bytes
        return stored + columns_bytes(self._attributes)

    # -- search ---------------------------------------------------------------------------

    def search(self, queries: Embeddings, k: int, filter: Filter = None) -> SearchResult:
        """Top-``k`` documents of every query; see :func:`embedlab.filters.resolve_filter` for
        the accepted ``filter`` forms."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InvalidInputError(f"exact index: k must be a positive integer, got {k!r}")
        store = self._store
        if store is None or not len(store):
            raise InvalidInputError("exact index: the index is empty; call build() first")
        kind = embedding_kind(queries)
        if kind is not store.kind:
            raise InvalidInputError(f"exact index: queries are {kind.value} embeddings but the index "
                                    f"holds {store.kind.value} embeddings; encode both with the "
                                    "same encoder")
        prepared = store.prepare(queries)
        n_queries, n_docs = store.count(prepared), len(store)
        mask = resolve_filter(filter, self._attributes, n_docs, n_queries)
        top = TopK(n_queries, int(k))
        if n_queries:
            self._scan(store, prepared, n_queries, mask, top)
        return SearchResult(store.finish(prepared, top.scores), top.positions)

    def _scan(self, store: Store, prepared: Any, n_queries: int, mask: np.ndarray | None,
              top: TopK) -> None:
        block_size = self.config.block_size
        union = None if mask is None else (mask if mask.ndim == 1 else mask.any(axis=0))
        selected = None if union is None or union.all() else np.flatnonzero(union)
        n_selected = len(store) if selected is None else selected.size
        batch = max(1, SCORE_BUDGET // block_size)
        by_batch = getattr(store, "prepares_batches", False)  # codes scored through per-batch tables
        if by_batch:
            batch = min(batch, prepared_query_batch(store.compressor))
        buffer = np.empty(min(batch, n_queries) * min(block_size, max(n_selected, 1)), np.float32)
        batches = [(q0, min(q0 + batch, n_queries)) for q0 in range(0, n_queries, batch)]
        # float vectors: each document block read once for every query batch; prepared codes: each
        # query batch's tables built once and held while every block is scanned
        pairs = (((q, b) for q in batches for b in _blocks(len(store), selected, block_size)) if by_batch
                 else ((q, b) for b in _blocks(len(store), selected, block_size) for q in batches))
        progress = tqdm(pairs, desc="exact search", unit="block", total=-(-n_selected // block_size) * len(batches),
                        leave=False, disable=n_queries * n_selected < PROGRESS_PAIRS)
        docs_major = getattr(store, "docs_major", False)  # scores come as (documents, queries)
        scorer, scorer_batch = None, None
        for (q0, q1), (docs, positions) in progress:
            out = buffer[:(q1 - q0) * positions.size].reshape(q1 - q0, positions.size)
            if by_batch:
                if scorer_batch != q0:
                    scorer = None  # release the previous batch's tables first
                    scorer, scorer_batch = store.batch_scorer(prepared, q0, q1), q0
                scores = scorer(docs, out)
            else:
                scores = store.scores(prepared, q0, q1, docs, out)
            if mask is not None and mask.ndim == 2:
                excluded = ~mask[q0:q1][:, positions]
                np.copyto(scores, MISSING_SCORE, where=excluded.T if docs_major else excluded)
            top.push(scores, positions, slice(q0, q1), docs_major=docs_major)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write the index and its compressor (the part ``compressor/``) as one atomic state."""
        arrays: dict[str, np.ndarray] = {} if self._store is None else dict(self._store.arrays())
        column_arrays, columns = columns_to_state(self._attributes, owner=OWNER)
        arrays.update(column_arrays)
        store = self._store
        meta = {"embedding_kind": None if store is None else store.kind.value,
                "dim": None if store is None else store.dim,
                "attributes": columns, "compressor": self._compressor is not None}
        save_state(path, self, arrays=arrays, meta=meta, parts={COMPRESSOR_DIR: self._compressor})

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> ExactIndex:
        """Load a saved index; ``mmap=True`` memory-maps the stored arrays. Every array is checked
        (dtypes, shapes, index ranges, offsets), so a forged state raises StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name, mmap=mmap)
        index = state.build(cls)
        if state.value("compressor", bool, default=False):
            index._compressor = state.part(COMPRESSOR_DIR, kind="compressor")
        kind = state.value("embedding_kind", (str, type(None)), default=None)
        if kind is not None:
            if kind not in {k.value for k in EmbeddingKind}:
                raise state.error(f"unknown embedding kind {kind!r}")
            kind = EmbeddingKind(kind)
            if index._compressor is not None and kind is not EmbeddingKind.DENSE:
                raise state.error("a compressor needs dense embeddings")
            dim = state.value("dim", int, minimum=0, maximum=1 << 40)
            extra = {"compressor": index._compressor} if kind is EmbeddingKind.DENSE else {}
            index._store = STORES[kind].restore(index.config.metric, dim, state, **extra)
        index._attributes = columns_from_state(state, len(index))
        return index


def _blocks(n_docs: int, selected: np.ndarray | None, size: int) -> Iterator[tuple[Rows, np.ndarray]]:
    """(rows to read, their positions) per block: slices of the corpus, or chunks of ``selected``."""
    if selected is None:
        for start in range(0, n_docs, size):
            stop = min(start + size, n_docs)
            yield slice(start, stop), np.arange(start, stop)
    else:
        for start in range(0, selected.size, size):
            chunk = selected[start:start + size]
            yield chunk, chunk


def prepared_query_batch(compressor: Any) -> int:
    """Queries whose lookup tables fit :data:`PREPARED_TABLE_BUDGET` together, from the compressor's
    ``table_bytes_per_query`` (the core ``pq``: ``m * ksub * 4``); :data:`PREPARED_QUERY_BATCH`
    when it does not report one."""
    per_query = getattr(compressor, "table_bytes_per_query", None)
    return PREPARED_QUERY_BATCH if not per_query else max(1, PREPARED_TABLE_BUDGET // int(per_query))
