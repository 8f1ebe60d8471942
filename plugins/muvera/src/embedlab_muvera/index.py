"""The ``muvera`` index: MIPS over document FDEs through any installed index, then exact Chamfer
(MaxSim) reranking of the candidates with :func:`embedlab.index.maxsim_scores`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.embeddings import Embeddings, MultiVectorEmbeddings
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.index import maxsim_scores
from embedlab.persistence import load_state, save_state
from embedlab.pipeline import create_component
from embedlab.protocols import Filter, Index
from embedlab.ranking import MISSING_SCORE, SearchResult
from embedlab_muvera.fde import FDEConfig, encode_documents_fde, encode_queries_fde

INNER_DIR = "inner"
_LAST = np.iinfo(np.int64).max


def _component_table(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, Mapping):
        raise ConfigError(f"inner_index must be a component table such as {{'name': 'exact'}} or "
                          f"{{'name': 'faiss', 'factory': 'HNSW32'}}, got {value!r}")
    return dict(value)


def _inner_table(instance: Any, attribute: attrs.Attribute, value: dict[str, Any]) -> None:
    if not isinstance(value.get("name"), str) or not all(isinstance(key, str) for key in value):
        raise ConfigError(f"inner_index needs a string 'name' (a registered index) and string "
                          f"parameter names, got {value!r}")


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{attribute.name} must be an integer >= 1, got {value!r}")


@attrs.frozen
class MuveraConfig(FDEConfig):
    """The FDE parameters of :class:`~embedlab_muvera.fde.FDEConfig`, plus ``candidates``: FDE
    nearest neighbours reranked by exact Chamfer per query (at least ``k``), and
    ``inner_index``: the index searched over document FDEs, as a component table
    (``{"name": "exact"}``, ``{"name": "faiss", "factory": "HNSW32"}``); it must rank by inner
    product, the default of both."""

    candidates: int = attrs.field(default=100, validator=_positive)
    inner_index: dict = attrs.field(factory=lambda: {"name": "exact"}, converter=_component_table,
                                    validator=_inner_table)


def _create_inner(table: Mapping[str, Any]) -> Index:
    inner = create_component("index", table)
    if not isinstance(inner, Index):
        raise ConfigError(f"muvera: inner_index {table.get('name')!r} does not implement the Index protocol")
    return inner


class MuveraIndex(Component):
    """MUVERA retrieval over multi-vector embeddings (Dhulipala et al., NeurIPS 2024).

    ``build`` encodes every document as an FDE (:func:`~embedlab_muvera.encode_documents_fde`)
    and builds the inner index on them; ``search`` encodes the queries
    (:func:`~embedlab_muvera.encode_queries_fde`), takes the top ``max(candidates, k)`` FDE
    inner products from the inner index (under ``filter``, which the inner index applies),
    and reorders them by exact Chamfer (MaxSim, inner products) against the stored document
    vectors. Scores are Chamfer scores, ties going to the lower position. A document without
    vectors has an all-zero FDE and Chamfer score ``-inf``: as in the core exact index it is
    never returned (its slot holds ``-1`` / ``-inf``).

    >>> index = MuveraIndex(k_sim=2, d_proj=None, R_reps=2, candidates=2)
    >>> docs = MultiVectorEmbeddings.from_list([np.eye(3)[:2], np.eye(3)[2:], -np.eye(3)])
    >>> index.build(docs)
    >>> index.search(MultiVectorEmbeddings.from_list([np.eye(3)[:1]]), k=1).indices
    array([[0]])
    """

    kind = "index"
    name = "muvera"
    Config = MuveraConfig

    def __init__(self, config: MuveraConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._inner = _create_inner(self.config.inner_index)
        self._documents: MultiVectorEmbeddings | None = None
        self._fde = np.zeros((0, 0), np.float32)
        self.last_timings: dict[str, float] = {}

    @property
    def inner(self) -> Index:
        """The index searched over document FDEs."""
        return self._inner

    @property
    def documents(self) -> MultiVectorEmbeddings | None:
        """The indexed document vectors (reranked by exact Chamfer), None before ``build``."""
        return self._documents

    @property
    def document_fde(self) -> np.ndarray:
        """``(n, fde_dim)`` FDEs of the indexed documents."""
        return self._fde

    # -- contents -------------------------------------------------------------------------

    def _check(self, items: Embeddings, what: str, *, same_dim: bool = True) -> MultiVectorEmbeddings:
        if not isinstance(items, MultiVectorEmbeddings):
            raise InvalidInputError(f"muvera: {what} must be multi-vector embeddings (one vector per "
                                    f"token, e.g. encoder 'minilm-tokens'), got {type(items).__name__}")
        if same_dim and self._documents is not None and items.dim != self._documents.dim:
            raise InvalidInputError(f"muvera: {what} have dimension {items.dim}, the index holds "
                                    f"dimension {self._documents.dim}")
        return items

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents: FDEs of these documents in a new inner index, vectors kept for
        reranking; ``attributes`` go to the inner index (for its filters)."""
        documents = self._check(embeddings, "documents", same_dim=False)
        if not len(documents):
            raise InvalidInputError("muvera: no documents to index (empty corpus)")
        fde = encode_documents_fde(documents, self.config)
        inner = _create_inner(self.config.inner_index)
        inner.build(fde, attributes)
        self._inner, self._fde, self._documents = inner, fde, documents

    def add(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents after the existing ones (builds when the index is empty)."""
        if self._documents is None:
            self.build(embeddings, attributes)
            return
        new = self._check(embeddings, "documents")
        fde = encode_documents_fde(new, self.config)
        self._inner.add(fde, attributes)
        old = self._documents
        self._documents = MultiVectorEmbeddings(np.concatenate([old.vectors, new.vectors]),
                                                np.concatenate([old.offsets, new.offsets[1:] + old.offsets[-1]]))
        self._fde = np.concatenate([self._fde, fde])

    def __len__(self) -> int:
        return 0 if self._documents is None else len(self._documents)

    @property
    def memory_bytes(self) -> int:
        """Document vectors and offsets, the FDE matrix, and the inner index's own report (which
        counts the FDEs again when it stores them, as the exact index does, sharing the array)."""
        docs = self._documents
        held = 0 if docs is None else int(docs.vectors.nbytes + docs.offsets.nbytes)
        return held + int(self._fde.nbytes) + int(self._inner.memory_bytes)

    # -- search ---------------------------------------------------------------------------

    def search(self, queries: Embeddings, k: int, filter: Filter = None, *,
               candidates: int | None = None) -> SearchResult:
        """Top-``k`` documents by Chamfer score among the FDE candidates of every query;
        ``candidates`` overrides the configured number for this call. Seconds spent encoding
        the queries, in the inner index and reranking go to :attr:`last_timings`."""
        for name, value in (("k", k), ("candidates", 1 if candidates is None else candidates)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise InvalidInputError(f"muvera: {name} must be a positive integer, got {value!r}")
        if self._documents is None:
            raise InvalidInputError("muvera: the index is empty; call build() first")
        queries = self._check(queries, "queries")
        if not len(queries):
            return SearchResult.empty(0, int(k))
        depth = min(max(candidates or self.config.candidates, int(k)), len(self))
        start = time.perf_counter()
        query_fde = encode_queries_fde(queries, self.config)
        encoded = time.perf_counter()
        first = self._inner.search(query_fde, depth, filter=filter)
        searched = time.perf_counter()
        scores = maxsim_scores(queries, self._documents, first.indices)
        self.last_timings = {"encode_s": encoded - start, "inner_s": searched - encoded,
                             "rerank_s": time.perf_counter() - searched}
        return _best(scores, first.indices, int(k))

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """FDEs, document vectors and config, and the inner index as the part ``inner/``, in one
        atomic state."""
        docs = self._documents
        arrays = {} if docs is None else {"fde": self._fde, "vectors": docs.vectors, "offsets": docs.offsets}
        save_state(path, self, arrays=arrays, meta={"built": docs is not None},
                   parts={INNER_DIR: None if docs is None else self._inner})

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> MuveraIndex:
        """Load a saved index (``mmap=True`` memory-maps the FDEs and document vectors)."""
        state = load_state(path, kind=cls.kind, name=cls.name, mmap=mmap)
        index = state.build(cls)
        if not state.value("built", bool, default=False):
            return index
        vectors = state.array("vectors", dtype=np.float32, ndim=2, finite=True)
        docs = MultiVectorEmbeddings(vectors, state.offsets("offsets", None, vectors.shape[0]))
        fde = state.array("fde", dtype=np.float32, shape=(len(docs), index.config.fde_dim(docs.dim)), finite=True)
        inner = state.part(INNER_DIR, kind="index")
        if len(inner) != len(docs) or getattr(inner, "name", None) != index.config.inner_index["name"]:
            raise state.error(f"the inner index ({getattr(inner, 'name', None)!r}, {len(inner)} documents) does "
                              f"not match the config ({index.config.inner_index['name']!r}) and the "
                              f"{len(docs)} documents")
        index._inner, index._fde, index._documents = inner, fde, docs
        return index


def _best(scores: np.ndarray, positions: np.ndarray, k: int) -> SearchResult:
    """The ``k`` best (score, position) pairs of each row, ties to the lower position; ``-inf``
    (no candidate, or a document without vectors) becomes an empty ``-1`` slot."""
    tie = np.where(positions < 0, _LAST, positions)
    order = np.lexsort((tie, -scores), axis=1)[:, :k]
    best = np.take_along_axis(scores, order, axis=1)
    found = best > MISSING_SCORE
    out_scores = np.full((scores.shape[0], k), MISSING_SCORE, np.float32)
    out_positions = np.full((scores.shape[0], k), -1, np.int64)
    width = order.shape[1]
    out_scores[:, :width] = np.where(found, best, MISSING_SCORE)
    out_positions[:, :width] = np.where(found, np.take_along_axis(positions, order, axis=1), -1)
    return SearchResult(out_scores, out_positions)
