"""The ``inverted`` index: exact inner-product search over sparse embeddings (BM25 weights,
SPLADE...) term at a time over posting lists, compiled with numba.

For every query it adds ``query weight x document weight`` into a score per document, visiting
only the postings of the query's terms, then keeps the top-k of the documents it touched. Scores
are bit-identical to the core ``exact`` index (float32 products accumulated in the query's term
order, as scipy's sparse product does) and so are the results: higher score first, ties to the
lower position, documents never touched count as score 0 (they fill the top-k in position order
when fewer than k documents score above 0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numba
import numpy as np
import scipy.sparse as sp

from embedlab.attributes import append_columns, check_columns, columns_bytes, columns_from_state, columns_to_state
from embedlab.components import Component
from embedlab.embeddings import as_sparse
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.filters import resolve_filter
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Filter
from embedlab.ranking import MISSING_SCORE, SearchResult
from embedlab.state_checks import check_csr

OWNER = "inverted index"

#: Largest document or term count a saved state may declare (positions are int32-addressable).
MAX_POSITIONS = 2**31 - 1


@numba.njit(inline="always")
def _better(score_a: float, pos_a: int, score_b: float, pos_b: int) -> bool:
    return score_a > score_b or (score_a == score_b and pos_a < pos_b)


@numba.njit
def _sift_down(heap_s: np.ndarray, heap_p: np.ndarray, size: int) -> None:
    """Restore the heap whose root (the worst kept result) was replaced."""
    i = 0
    while True:
        left, worst = 2 * i + 1, i
        if left < size and _better(heap_s[worst], heap_p[worst], heap_s[left], heap_p[left]):
            worst = left
        right = left + 1
        if right < size and _better(heap_s[worst], heap_p[worst], heap_s[right], heap_p[right]):
            worst = right
        if worst == i:
            return
        heap_s[i], heap_s[worst] = heap_s[worst], heap_s[i]
        heap_p[i], heap_p[worst] = heap_p[worst], heap_p[i]
        i = worst


@numba.njit
def _offer(heap_s: np.ndarray, heap_p: np.ndarray, size: int, k: int, score: float, pos: int) -> int:
    """Keep (score, pos) among the k best; returns the new heap size."""
    if size < k:
        i = size
        heap_s[i], heap_p[i] = score, pos
        while i > 0:  # sift up: the root is the worst
            parent = (i - 1) // 2
            if _better(heap_s[parent], heap_p[parent], heap_s[i], heap_p[i]):
                heap_s[i], heap_s[parent] = heap_s[parent], heap_s[i]
                heap_p[i], heap_p[parent] = heap_p[parent], heap_p[i]
                i = parent
            else:
                break
        return size + 1
    if _better(score, pos, heap_s[0], heap_p[0]):
        heap_s[0], heap_p[0] = score, pos
        _sift_down(heap_s, heap_p, size)
    return size


@numba.njit(nogil=True, cache=True)
def _search(q_indptr, q_indices, q_data, t_indptr, t_docs, t_weights, n_docs, k, mask, per_query_mask,
            out_scores, out_pos):  # pragma: no cover - compiled
    scores = np.zeros(n_docs, np.float32)
    touched = np.zeros(n_docs, np.bool_)
    order = np.empty(n_docs, np.int64)
    heap_s = np.empty(k, np.float32)
    heap_p = np.empty(k, np.int64)
    for q in range(q_indptr.size - 1):
        row = q if per_query_mask else 0
        n_touched = 0
        for jj in range(q_indptr[q], q_indptr[q + 1]):
            term, weight = q_indices[jj], q_data[jj]
            for p in range(t_indptr[term], t_indptr[term + 1]):
                doc = t_docs[p]
                if not touched[doc]:
                    touched[doc] = True
                    order[n_touched] = doc
                    n_touched += 1
                scores[doc] += weight * t_weights[p]
        size = 0
        for i in range(n_touched):
            doc = order[i]
            score = scores[doc]
            if size == k and not _better(score, doc, heap_s[0], heap_p[0]):
                continue  # the common case, decided without a call
            if mask.shape[1] == 0 or mask[row, doc]:
                size = _offer(heap_s, heap_p, size, k, score, doc)
        if size < k or heap_s[0] <= 0:  # untouched documents (score 0) may belong to the top-k
            offered = 0
            for doc in range(n_docs):
                if offered == k:
                    break
                if not touched[doc] and (mask.shape[1] == 0 or mask[row, doc]):
                    size = _offer(heap_s, heap_p, size, k, np.float32(0.0), doc)
                    offered += 1
        for i in range(n_touched):
            doc = order[i]
            scores[doc] = 0
            touched[doc] = False
        for slot in range(size - 1, -1, -1):  # pop the worst first: fill from the back
            out_scores[q, slot], out_pos[q, slot] = heap_s[0], heap_p[0]
            size -= 1
            heap_s[0], heap_p[0] = heap_s[size], heap_p[size]
            _sift_down(heap_s, heap_p, size)


class InvertedIndex(Component):
    """Sparse embeddings in posting lists (documents by term); exact inner-product top-k.

    >>> index = InvertedIndex()
    >>> index.build(sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], np.float32)))
    >>> index.search(sp.csr_matrix(np.array([[0, 1, 1]], np.float32)), k=2).indices.tolist()
    [[1, 0]]
    """

    kind = "index"
    name = "inverted"

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._postings: sp.csc_matrix | None = None  # (documents, terms): column j = postings of term j
        self._attributes: dict[str, np.ndarray] = {}

    def build(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these sparse documents (positions 0..n-1)."""
        documents = as_sparse(embeddings, name="inverted index documents")
        self._attributes = check_columns(attributes, documents.shape[0], owner=OWNER)
        self._postings = _postings(documents)

    def add(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents after the existing ones."""
        if self._postings is None:
            self.build(embeddings, attributes)
            return
        documents = as_sparse(embeddings, dim=self._postings.shape[1], name="inverted index documents")
        new = check_columns(attributes, documents.shape[0], self._attributes, owner=OWNER)
        self._postings = _postings(sp.vstack([self._postings.tocsr(), documents], format="csr"))
        self._attributes = append_columns(self._attributes, new)

    def __len__(self) -> int:
        return 0 if self._postings is None else int(self._postings.shape[0])

    @property
    def memory_bytes(self) -> int:
        """Bytes of the posting lists (document ids, weights, term offsets) and attribute columns."""
        if self._postings is None:
            return 0
        p = self._postings
        return int(p.data.nbytes + p.indices.nbytes + p.indptr.nbytes) + columns_bytes(self._attributes)

    def search(self, queries: Any, k: int, filter: Filter = None) -> SearchResult:
        """Exact top-``k`` by inner product; ``filter`` as in :func:`embedlab.filters.resolve_filter`."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InvalidInputError(f"inverted index: k must be a positive integer, got {k!r}")
        postings = self._built()
        q = as_sparse(queries, dim=postings.shape[1], name="inverted index queries", allow_empty=True)
        q = sp.csr_matrix(q, dtype=np.float32)
        q.sum_duplicates()
        q.sort_indices()
        n_docs, n_queries = postings.shape[0], q.shape[0]
        mask = resolve_filter(filter, self._attributes, n_docs, n_queries)
        mask2d = np.zeros((1, 0), np.bool_) if mask is None else np.ascontiguousarray(np.atleast_2d(mask))
        kk = int(min(k, n_docs))
        scores = np.full((n_queries, kk), MISSING_SCORE, np.float32)
        positions = np.full((n_queries, kk), -1, np.int64)
        if n_queries:
            _search(q.indptr.astype(np.int64), q.indices.astype(np.int64), q.data, postings.indptr.astype(np.int64),
                    postings.indices, postings.data, n_docs, kk, mask2d, mask is not None and mask.ndim == 2,
                    scores, positions)
        if kk < k:
            scores = np.pad(scores, ((0, 0), (0, k - kk)), constant_values=MISSING_SCORE)
            positions = np.pad(positions, ((0, 0), (0, k - kk)), constant_values=-1)
        return SearchResult(scores, positions)

    def save(self, path: str | Path) -> None:
        """Posting lists and attribute columns as ``.npy`` (embedlab.persistence)."""
        p = self._built()
        column_arrays, columns = columns_to_state(self._attributes, owner=OWNER)
        save_state(path, self, arrays={"indptr": p.indptr, "documents": p.indices, "weights": p.data, **column_arrays},
                   meta={"n_docs": int(p.shape[0]), "n_terms": int(p.shape[1]), "attributes": columns})

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> InvertedIndex:
        """Load an index written by :meth:`save`: checksums verified, and the posting lists checked
        (pointers, document ids in range, finite float32 weights) before the kernel reads them;
        ``mmap`` maps the arrays."""
        state = load_state(path, kind=cls.kind, name=cls.name, mmap=mmap)
        index = state.build(cls)
        n_docs = state.value("n_docs", int, minimum=1, maximum=MAX_POSITIONS)
        n_terms = state.value("n_terms", int, minimum=0, maximum=MAX_POSITIONS)
        weights = state.array("weights", dtype=np.float32, ndim=1)
        documents, indptr = state.array("documents", kinds="iu", ndim=1), state.array("indptr", kinds="iu", ndim=1)
        check_csr(weights, documents, indptr, n_docs, f"{path}: posting lists", n_rows=n_terms)
        index._postings = sp.csc_matrix((weights, documents, indptr), shape=(n_docs, n_terms))
        index._attributes = columns_from_state(state, n_docs)
        return index

    def _built(self) -> sp.csc_matrix:
        if self._postings is None:
            raise NotFittedError("inverted index: the index is empty; call build(embeddings) first")
        return self._postings


def _postings(documents: sp.csr_matrix) -> sp.csc_matrix:
    """Term-major float32 postings with document ids ascending within each term."""
    if documents.shape[0] == 0:
        raise InvalidInputError("inverted index: no documents to index (empty corpus)")
    postings = sp.csc_matrix(documents, dtype=np.float32)
    postings.sum_duplicates()
    postings.sort_indices()
    return postings
