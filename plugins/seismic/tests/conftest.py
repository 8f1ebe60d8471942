"""Shared data for the Seismic tests: the toy SPLADE collection (real) and a synthetic
learned-sparse collection (Zipfian terms, log-normal weights, queries made from documents)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_seismic import read_jsonl

from embedlab.index import ExactIndex

TOY = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "seismic-toy-splade"


def learned_sparse(n_docs: int, n_queries: int, vocab: int, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Documents of ~60 Zipf-distributed terms with log-normal weights; each query is the 20
    largest entries of a random document, re-weighted, plus 5 random terms."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(10, vocab + 10) ** 1.1
    popularity /= popularity.sum()
    lengths = rng.poisson(60, n_docs) + 1
    rows = np.repeat(np.arange(n_docs), lengths)
    terms = rng.choice(vocab, size=rows.size, p=popularity)
    values = rng.lognormal(-1.0, 0.8, rows.size).astype(np.float32)
    docs = sp.csr_matrix((values, (rows, terms)), shape=(n_docs, vocab), dtype=np.float32)
    docs.sum_duplicates()
    q_rows, q_terms, q_vals = [], [], []
    for q, source in enumerate(rng.choice(n_docs, n_queries, replace=False)):
        row = docs.getrow(source)
        top = np.argsort(-row.data)[:20]
        picked = np.concatenate([row.indices[top], rng.choice(vocab, 5, p=popularity)])
        weights = np.concatenate([row.data[top] * rng.uniform(0.5, 1.5, top.size),
                                  rng.lognormal(-1.0, 0.8, 5)])
        q_rows += [q] * picked.size
        q_terms += picked.tolist()
        q_vals += weights.tolist()
    queries = sp.csr_matrix((np.asarray(q_vals, np.float32), (q_rows, q_terms)), shape=(n_queries, vocab),
                            dtype=np.float32)
    queries.sum_duplicates()
    return docs, queries


def _exact_top(docs: sp.csr_matrix, queries: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k (core exact index: scipy products), positive scores only (-1 elsewhere)."""
    exact = ExactIndex(metric="ip")
    exact.build(docs)
    result = exact.search(queries, k)
    found = result.scores > 0
    return np.where(found, result.indices, -1), np.where(found, result.scores, -np.inf)


def _accuracy(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |found ∩ exact top-k| / |exact top-k| (queries with no match skipped)."""
    values = [len(set(f[f >= 0]) & set(t[t >= 0])) / (t >= 0).sum() for f, t in zip(found, truth)
              if (t >= 0).any()]
    return float(np.mean(values))


@pytest.fixture(scope="session")
def exact_top() -> Callable[[sp.csr_matrix, sp.csr_matrix, int], tuple[np.ndarray, np.ndarray]]:
    """``exact_top(docs, queries, k)``: brute-force positions and scores (fixtures rather than
    imports, so that the tests also run under pytest's importlib import mode)."""
    return _exact_top


@pytest.fixture(scope="session")
def accuracy() -> Callable[[np.ndarray, np.ndarray], float]:
    """``accuracy(found, truth)``: mean fraction of the exact top-k found."""
    return _accuracy


@pytest.fixture(scope="session")
def toy() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The toy SPLADE documents (20, one empty) and queries (5) over the documents' vocabulary."""
    _, docs, vocabulary = read_jsonl(TOY / "documents.jsonl")
    _, queries, _ = read_jsonl(TOY / "queries.jsonl", vocabulary)
    return docs, queries


@pytest.fixture(scope="session")
def synthetic() -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """3,000 documents, 60 queries, vocabulary 4,000."""
    return learned_sparse(3000, 60, 4000, seed=7)
