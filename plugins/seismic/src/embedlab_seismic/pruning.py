"""Selections of the largest entries (vectorised numpy: one sort over all non-zeros)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def prune(documents: sp.csr_matrix, n_postings: int, strategy: str,
          max_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Posting lists of the pruned inverted index: ``(list_ptr, list_docs)``.

    The documents of term ``t`` are ``list_docs[list_ptr[t]:list_ptr[t + 1]]``, largest value
    first (ties: lower document position first).

    * ``"fixed"``: the ``n_postings`` largest entries of each list;
    * ``"global"``: the ``n_postings * vocabulary`` largest entries of the collection (ties: lower
      term id, then lower position), at most ``max(1, int(n_postings * max_fraction))`` per list.
    """
    n_docs, dim = documents.shape
    rows = np.repeat(np.arange(n_docs, dtype=np.int32), np.diff(documents.indptr))
    terms = documents.indices
    values = documents.data
    if strategy == "fixed":
        order = np.lexsort((rows, -values, terms))
        limit = n_postings
    else:
        order = np.lexsort((rows, terms, -values))[:n_postings * dim]
        order = order[np.argsort(terms[order], kind="stable")]
        limit = max(1, int(n_postings * max_fraction))
    counts = np.bincount(terms[order], minlength=dim)
    rank = np.arange(order.size) - np.repeat(np.cumsum(counts) - counts, counts)
    kept = order[rank < limit]
    list_ptr = np.zeros(dim + 1, dtype=np.int64)
    np.cumsum(np.bincount(terms[kept], minlength=dim), out=list_ptr[1:])
    return list_ptr, np.ascontiguousarray(rows[kept], dtype=np.int32)


def top_entries(documents: sp.csr_matrix, doc_cut: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR ``(ptr, terms, values)`` of each document's ``doc_cut`` largest entries (ties: lower
    term id), the approximate vectors the blocking compares with the centroids."""
    n_docs = documents.shape[0]
    lengths = np.diff(documents.indptr)
    rows = np.repeat(np.arange(n_docs), lengths)
    order = np.lexsort((documents.indices, -documents.data, rows))
    rank = np.arange(order.size) - np.repeat(documents.indptr[:-1], lengths)
    kept = order[rank < doc_cut]
    ptr = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(np.minimum(lengths, doc_cut), out=ptr[1:])
    return ptr, documents.indices[kept], documents.data[kept]
