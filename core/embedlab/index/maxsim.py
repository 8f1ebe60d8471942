"""Exact late-interaction (MaxSim / Chamfer) scoring of multi-vector embeddings.

The score of query ``q`` (vectors ``q_1..q_m``) for document ``d`` (vectors ``d_1..d_n``) is
``sum_i max_j <q_i, d_j>``. Edge cases, by the same formula:

* a document with no vectors scores ``-inf`` (the max over an empty set) for every query that
  has vectors: it can never match, and indexes never return it;
* a query with no vectors scores ``0`` for every document (an empty sum).

Everything is vectorised: one matrix product of query vectors with the concatenated document
vectors, ``np.maximum.reduceat`` over document offsets, ``np.add.reduceat`` over query offsets;
no Python loop per document. Work is split into batches bounded by :data:`MAX_PRODUCT`.
"""

from __future__ import annotations

import numpy as np

from embedlab.embeddings import MultiVectorEmbeddings
from embedlab.errors import InvalidInputError
from embedlab.ranking import MISSING_SCORE

#: Largest (query vectors x document vectors) similarity block computed at once (float32 entries).
MAX_PRODUCT = 1 << 23
_QUERY_VECTORS = int(np.sqrt(MAX_PRODUCT))


def maxsim_scores(queries: MultiVectorEmbeddings, docs: MultiVectorEmbeddings,
                  candidates: np.ndarray | None = None) -> np.ndarray:
    """Chamfer scores: ``(n_q, n_d)`` for every pair, or ``(n_q, c)`` for the document positions
    in ``candidates`` (shape ``(n_q, c)``, ``-1`` meaning no candidate, scored ``-inf``).

    >>> q = MultiVectorEmbeddings.from_list([np.eye(2, dtype=np.float32)])
    >>> d = MultiVectorEmbeddings.from_list([np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 2.0]])])
    >>> maxsim_scores(q, d)
    array([[1., 3.]], dtype=float32)
    """
    for name, value in (("queries", queries), ("docs", docs)):
        if not isinstance(value, MultiVectorEmbeddings):
            raise InvalidInputError(f"maxsim: {name} must be MultiVectorEmbeddings, got "
                                    f"{type(value).__name__}")
    if queries.dim != docs.dim:
        raise InvalidInputError(f"maxsim: query vectors have dimension {queries.dim}, document vectors "
                                f"have dimension {docs.dim}")
    if candidates is None:
        return _all_pairs(queries, docs)
    return _candidates(queries, docs, _check_candidates(candidates, len(queries), len(docs)))


def _check_candidates(candidates: np.ndarray, n_queries: int, n_docs: int) -> np.ndarray:
    cand = np.asarray(candidates)
    if cand.ndim != 2 or cand.shape[0] != n_queries or cand.dtype.kind not in "iu":
        raise InvalidInputError(f"maxsim: candidates must be an integer array of shape ({n_queries}, c), "
                                f"got {cand.dtype} {cand.shape}")
    if cand.size and (cand.min() < -1 or cand.max() >= n_docs):
        raise InvalidInputError(f"maxsim: candidate positions must lie in [0, {n_docs}) or be -1 "
                                f"(none), got values in [{cand.min()}, {cand.max()}]")
    return cand.astype(np.int64, copy=False)


def _batches(offsets: np.ndarray, max_vectors: int) -> list[tuple[int, int]]:
    """Consecutive item ranges holding at most ``max_vectors`` vectors (or a single item)."""
    n, bounds = offsets.size - 1, [0]
    while bounds[-1] < n:
        start = bounds[-1]
        end = int(np.searchsorted(offsets, offsets[start] + max_vectors, side="right")) - 1
        bounds.append(min(max(end, start + 1), n))
    return list(zip(bounds[:-1], bounds[1:]))


def _slice(items: MultiVectorEmbeddings, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    offsets = items.offsets[start:end + 1]
    return items.vectors[offsets[0]:offsets[-1]], offsets - offsets[0]


def _all_pairs(queries: MultiVectorEmbeddings, docs: MultiVectorEmbeddings) -> np.ndarray:
    out = np.empty((len(queries), len(docs)), dtype=np.float32)
    for q0, q1 in _batches(queries.offsets, _QUERY_VECTORS):
        q_vectors, q_offsets = _slice(queries, q0, q1)
        d_budget = max(1, MAX_PRODUCT // max(1, q_vectors.shape[0]))
        for d0, d1 in _batches(docs.offsets, d_budget):
            out[q0:q1, d0:d1] = maxsim_block(q_vectors, q_offsets, *_slice(docs, d0, d1))
    return out


def _candidates(queries: MultiVectorEmbeddings, docs: MultiVectorEmbeddings,
                candidates: np.ndarray) -> np.ndarray:
    out = np.full(candidates.shape, MISSING_SCORE, dtype=np.float32)
    for row in range(len(queries)):
        valid = np.flatnonzero(candidates[row] >= 0)
        if valid.size:
            picked = docs.take(candidates[row, valid])
            out[row, valid] = maxsim_block(queries.item(row), np.array([0, queries.counts[row]]),
                                           picked.vectors, picked.offsets)[0]
    return out


def maxsim_block(q_vectors: np.ndarray, q_offsets: np.ndarray, d_vectors: np.ndarray,
                 d_offsets: np.ndarray) -> np.ndarray:
    """``(n_q, n_d)`` Chamfer scores of flat query vectors against flat document vectors, both
    given with offsets starting at 0 (the building block of :func:`maxsim_scores`; no batching)."""
    q_counts, d_counts = np.diff(q_offsets), np.diff(d_offsets)
    out = np.zeros((q_counts.size, d_counts.size), dtype=np.float32)
    q_full, d_full = np.flatnonzero(q_counts), np.flatnonzero(d_counts)
    out[np.ix_(q_full, np.flatnonzero(d_counts == 0))] = MISSING_SCORE
    if q_full.size == 0 or d_full.size == 0:
        return out
    similarity = q_vectors @ d_vectors.T
    per_vector = np.maximum.reduceat(similarity, d_offsets[d_full], axis=1)
    out[np.ix_(q_full, d_full)] = np.add.reduceat(per_vector, q_offsets[q_full], axis=0)
    return out
