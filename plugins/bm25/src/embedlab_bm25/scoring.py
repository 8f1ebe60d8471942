"""Vectorised BM25 arithmetic: term counts, idf variants and per-term document weights.

Variants follow bm25s (Kamphuis et al., ECIR 2020), with ``norm = k1 * (1 - b + b * dl / avgdl)``:

============ ===================================== =============================
method       idf                                   term-frequency component
============ ===================================== =============================
robertson    ln(max(1, (N - df + .5) / (df + .5)))  tf / (tf + norm)
lucene       ln(1 + (N - df + .5) / (df + .5))      tf / (tf + norm)
atire        ln(N / df)                            tf * (k1 + 1) / (tf + norm)
============ ===================================== =============================

Lucene (since 8.0) and bm25s drop the constant factor ``k1 + 1`` of the classic formula; it scales
every score equally and never changes a ranking. Lucene also stores each document's length in one
byte (``SmallFloat.intToByte4``: exact below 24 tokens, 4 significant bits above), so its ``dl`` is
rounded down; :func:`lucene_lengths` reproduces that (``avgdl`` stays exact, as in Lucene).
"""

from __future__ import annotations

from itertools import chain, repeat
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

METHODS = ("robertson", "lucene", "atire")


def vocabulary_of(token_lists: Sequence[list[str]]) -> np.ndarray:
    """Sorted unicode array of the distinct tokens."""
    return np.array(sorted(set(chain.from_iterable(token_lists))), dtype=str)


def term_counts(token_lists: Sequence[list[str]], columns: Mapping[str, int],
                n_terms: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """``(n_texts, n_terms)`` float32 CSR of term counts and the token count of each text.

    ``columns`` maps a term to its column; tokens missing from it are dropped from the counts
    (they still count towards the text's length).
    """
    lengths = np.fromiter(map(len, token_lists), dtype=np.int64, count=len(token_lists))
    ids = np.fromiter(map(columns.get, chain.from_iterable(token_lists), repeat(-1)),
                      dtype=np.int64, count=int(lengths.sum()))
    rows = np.repeat(np.arange(lengths.size, dtype=np.int64), lengths)
    known = ids >= 0
    counts = sp.csr_matrix((np.ones(int(known.sum()), dtype=np.float32), (rows[known], ids[known])),
                           shape=(lengths.size, n_terms), dtype=np.float32)
    counts.sum_duplicates()
    counts.sort_indices()
    return counts, lengths


#: ``SmallFloat.intToByte4``: lengths below this are stored exactly (255 - longToInt4(2**31 - 1)).
_EXACT_LENGTHS = 24


def lucene_lengths(lengths: np.ndarray) -> np.ndarray:
    """Document lengths as Lucene's one-byte norm gives them back (``byte4ToInt(intToByte4(n))``)."""
    n = np.asarray(lengths, dtype=np.int64)
    rest = np.maximum(n - _EXACT_LENGTHS, 0)
    bits = np.zeros_like(rest)
    nonzero = rest > 0
    bits[nonzero] = np.floor(np.log2(rest[nonzero])).astype(np.int64) + 1  # bit length
    shift = np.maximum(bits - 4, 0)
    kept = np.where(bits < 4, rest, ((rest >> shift) | 0x08) << shift)  # 4 significant bits
    return np.where(n < _EXACT_LENGTHS, n, _EXACT_LENGTHS + kept)


def idf(doc_freq: np.ndarray, n_docs: int, method: str) -> np.ndarray:
    """Inverse document frequency of every term (float64)."""
    df = doc_freq.astype(np.float64)
    if method == "atire":
        return np.log(n_docs / df)
    odds = (n_docs - df + 0.5) / (df + 0.5)
    if method == "lucene":
        return np.log1p(odds)
    return np.log(np.maximum(odds, 1.0))


def document_weights(counts: sp.csr_matrix, lengths: np.ndarray, idf_values: np.ndarray, avgdl: float,
                     k1: float, b: float, method: str) -> sp.csr_matrix:
    """BM25 weight of every (document, term) posting: ``idf * tf component``, float32 CSR."""
    rows = np.repeat(np.arange(counts.shape[0]), np.diff(counts.indptr))
    tf = counts.data.astype(np.float64)
    norm = k1 * (1.0 - b + b * lengths[rows] / avgdl)
    component = tf / (tf + norm)
    if method == "atire":
        component *= k1 + 1.0
    weights = sp.csr_matrix((idf_values[counts.indices] * component, counts.indices.copy(),
                             counts.indptr.copy()), shape=counts.shape, dtype=np.float32)
    return weights
