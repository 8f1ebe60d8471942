"""Every index in the repository, on small corpora sized around each threshold it has: unfiltered
and filtered searches return the exact top-k (exact indexes) or a sane approximation (ANN indexes).

Checked for every (index, corpus size, filter): the result has shape ``(queries, k)``; returned
positions exist, pass the filter and are not repeated; padding (``-1`` / ``-inf``) comes last. An
exact index returns the brute-force top-k (positions and scores) and exactly ``min(k, passing)``
documents; an approximate one reaches ``min_recall`` of the brute-force top-k. Thresholds covered:
``k`` against the corpus size and against the documents a filter lets through (all indexes), and
each index's own (``CASES``: block sizes, ACORN's ``exact_below``, candidate depths, IVF list
counts, ...). A new index plugin adds its cases here; ``test_every_registered_index_is_covered``
fails until it does.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest
import scipy.sparse as sp

import embedlab
from embedlab.embeddings import MultiVectorEmbeddings

DIM = 16
N_QUERIES = 6


@attrs.frozen
class Case:
    """One index configuration and the corpus sizes around its thresholds."""

    name: str
    params: dict[str, Any]
    sizes: tuple[int, ...]
    embedding: str = "dense"  # dense, sparse or multi
    min_recall: float | None = None  # None: exact
    k: int = 10

    @property
    def id(self) -> str:
        shown = ",".join(f"{key}={value}" for key, value in self.params.items())
        return f"{self.name}({shown})"


CASES = [
    # k against n: fewer documents than k, exactly k, one more (every case also runs k = n).
    Case("exact", {}, (9, 10, 11, 300)),
    Case("exact", {"block_size": 32}, (31, 32, 33, 65)),
    Case("exact", {"block_size": 1 << 22}, (40,)),  # 2 queries per score batch (SCORE_BUDGET // block)
    Case("prefilter", {"block_size": 32}, (31, 32, 33, 200)),
    Case("postfilter", {}, (9, 10, 11, 200)),
    Case("postfilter", {"oversample": 0.1, "growth": 3.0}, (50, 200)),
    # Deep enough, post-filtering an HNSW finds what passes (its beam is widened to the depth).
    Case("postfilter", {"index": "faiss", "index_params": {"factory": "HNSW16"}}, (50, 300), min_recall=0.95),
    # With a fallback, ACORN answers queries passing <= exact_below documents exactly, the others
    # through the graph (the fallback is off by default: exact_below = 0).
    Case("acorn", {"exact_below": 1000}, (10, 300, 999, 1000)),
    Case("acorn", {"exact_below": 100}, (99, 100, 101, 400), min_recall=0.9),
    # Graph only: a filter passing 1 of 200 documents (far below 1 / gamma) may find nothing.
    Case("acorn", {"exact_below": 0, "M": 8, "gamma": 4, "M_beta": 8}, (10, 11, 200), min_recall=0.8),
    Case("acorn", {}, (10, 300), min_recall=0.8),  # the defaults: graph only
    Case("faiss", {"factory": "Flat"}, (9, 10, 11, 200)),
    # FAISS's filtered HNSW finds about half of what a filter passing ~10 of 300 documents lets
    # through (pooled recall ~0.8); unfiltered it is near exact, for any k (beam widened to k).
    Case("faiss", {"factory": "HNSW16"}, (10, 11, 300), min_recall=0.7),
    Case("faiss", {"factory": "IVF4,Flat", "nprobe": 4}, (160, 200)),  # every list probed: exact
    Case("faiss", {"factory": "IVF4,Flat", "nprobe": 1}, (200,), min_recall=0.2),
    Case("bidr", {"m": 4, "ksub": 16, "candidates": 40}, (39, 40, 41, 200), min_recall=0.6),
    Case("bidr", {"m": 4, "ksub": 16, "candidates": 1000}, (16, 200)),  # all re-scored: exact
    Case("distillvq", {"nlist": 4, "nprobe": 4, "m": 4, "ksub": 16, "epochs": 0, "show_progress": False},
         (16, 17, 200), min_recall=0.4),
    Case("inverted", {}, (9, 10, 11, 200), embedding="sparse"),
    Case("seismic", {"n_postings": 1000}, (10, 11, 200), embedding="sparse", min_recall=0.8),
    Case("seismic", {"n_postings": 20, "doc_cut": 4}, (19, 20, 21, 200), embedding="sparse", min_recall=0.5),
    Case("muvera", {"candidates": 40, "R_reps": 4}, (39, 40, 41, 150), embedding="multi", min_recall=0.6),
    Case("muvera", {"candidates": 1000, "R_reps": 4}, (10, 11, 150), embedding="multi"),  # all reranked
]


def _documents(kind: str, n: int, rng: np.random.Generator) -> tuple[Any, Any]:
    """(documents, queries) of one embedding kind, seeded."""
    if kind == "dense":
        return (rng.standard_normal((n, DIM)).astype(np.float32),
                rng.standard_normal((N_QUERIES, DIM)).astype(np.float32))
    if kind == "sparse":
        def matrix(rows: int, nnz: int) -> sp.csr_matrix:
            dense = np.zeros((rows, 64), np.float32)
            for row in dense:
                row[rng.choice(64, nnz, replace=False)] = rng.random(nnz).astype(np.float32) + 0.1
            return sp.csr_matrix(dense)
        return matrix(n, 8), matrix(N_QUERIES, 4)

    def tokens(count: int) -> MultiVectorEmbeddings:
        return MultiVectorEmbeddings.from_list(
            [rng.standard_normal((int(rng.integers(1, 5)), DIM)).astype(np.float32) for _ in range(count)])
    return tokens(n), tokens(N_QUERIES)


def _scores(kind: str, docs: Any, queries: Any) -> np.ndarray:
    """``(queries, documents)`` float64 inner products (Chamfer sums for multi-vector)."""
    if kind == "dense":
        return queries.astype(np.float64) @ docs.astype(np.float64).T
    if kind == "sparse":
        return (queries.astype(np.float64) @ docs.astype(np.float64).T).toarray()
    return np.array([[float((queries.item(q).astype(np.float64) @ docs.item(d).astype(np.float64).T).max(axis=1).sum())
                      for d in range(len(docs))] for q in range(len(queries))])


def _filters(n: int, k: int, threshold: int | None, rng: np.random.Generator) -> dict[str, Any]:
    """Filters sized around ``k`` and around the index's own threshold (documents passing)."""
    attribute = np.arange(n)
    sizes = {0, 1, k - 1, k, k + 1, n // 2, n}
    if threshold is not None:
        sizes |= {threshold - 1, threshold, threshold + 1}
    filters: dict[str, Any] = {"none": None}
    for size in sorted(s for s in sizes if 0 <= s <= n):
        mask = np.zeros(n, bool)
        mask[rng.choice(n, size, replace=False)] = True
        filters[f"mask{size}"] = mask
    filters["dict"] = {"position": {"lt": max(1, n // 3)}}
    per_query = np.zeros((N_QUERIES, n), bool)
    for row, size in zip(per_query, [0, 1, k, n // 2, n, max(1, n // 5)]):
        row[rng.choice(n, min(size, n), replace=False)] = True
    filters["per-query"] = per_query
    filters["list"] = [None, {"position": {"gte": n // 2}}, None, {"position": 0}, None, None]
    return {name: (spec, attribute) for name, spec in filters.items()}


def _mask(spec: Any, attribute: np.ndarray) -> np.ndarray:
    from embedlab.filters import resolve_filter

    n = attribute.size
    mask = resolve_filter(spec, {"position": attribute}, n, N_QUERIES)
    return np.ones((N_QUERIES, n), bool) if mask is None else np.broadcast_to(mask, (N_QUERIES, n))


def _threshold(case: Case) -> int | None:
    for key in ("exact_below", "candidates", "block_size", "n_postings"):
        if key in case.params:
            return int(case.params[key])
    return 1000 if case.name == "acorn" else None


def _check(case: Case, n: int, k: int, result: Any, scores: np.ndarray, mask: np.ndarray,
           label: str) -> list[float]:
    """Assert the invariants (and exactness); return the recall of each query with a non-empty truth."""
    indices, found_scores = np.asarray(result.indices), np.asarray(result.scores)
    assert indices.shape == (N_QUERIES, k) and found_scores.shape == (N_QUERIES, k), label
    masked = np.where(mask, scores, -np.inf)
    truth = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    passing = mask.sum(axis=1)
    recalls = []
    for row in range(N_QUERIES):
        got = indices[row]
        valid = got >= 0
        assert (got[valid] < n).all(), f"{label} q{row}: position out of range"
        assert np.all(valid[:valid.sum()]), f"{label} q{row}: padding before a result"
        assert np.all(found_scores[row][~valid] == -np.inf), f"{label} q{row}: padding without -inf"
        assert mask[row, got[valid]].all(), f"{label} q{row}: a document the filter rejects"
        assert np.unique(got[valid]).size == valid.sum(), f"{label} q{row}: a document twice"
        expected = truth[row][: min(k, passing[row])]
        if case.min_recall is None:
            assert valid.sum() == expected.size, f"{label} q{row}: {valid.sum()} results, want {expected.size}"
            assert set(got[valid].tolist()) == set(expected.tolist()), f"{label} q{row}: not the exact top-k"
            np.testing.assert_allclose(found_scores[row][valid], masked[row, got[valid]], rtol=1e-4,
                                       atol=1e-4, err_msg=f"{label} q{row}")
        if case.embedding == "sparse":  # documents sharing no term with the query are never retrieved
            expected = expected[masked[row, expected] > 0]
        if expected.size:
            recalls.append(np.intersect1d(got[valid], expected).size / expected.size)
    return recalls


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_index_returns_the_top_k_around_its_thresholds(case: Case) -> None:
    """Exact cases are checked query by query. Approximate ones must reach ``min_recall`` on the
    unfiltered queries and on all filtered queries pooled (an ANN index may miss the one document
    a very selective filter lets through: that is what its exact fallbacks are for)."""
    for n in case.sizes:
        rng = np.random.default_rng([n, len(case.params)])
        docs, queries = _documents(case.embedding, n, rng)
        index = embedlab.create("index", case.name, **case.params)
        index.build(docs, attributes={"position": np.arange(n)})
        scores = _scores(case.embedding, docs, queries)
        for k in sorted({case.k, n}):
            pooled: list[float] = []
            for label, (spec, attribute) in _filters(n, k, _threshold(case), rng).items():
                result = index.search(queries, k, filter=spec)
                where = f"{case.id} n={n} k={k} {label}"
                recalls = _check(case, n, k, result, scores, _mask(spec, attribute), where)
                if label == "none" and case.min_recall is not None:
                    assert np.mean(recalls) >= case.min_recall, f"{where}: recall {np.mean(recalls):.2f}"
                pooled += recalls
            if case.min_recall is not None:
                assert np.mean(pooled) >= case.min_recall, f"{case.id} n={n} k={k}: filtered recall " \
                                                           f"{np.mean(pooled):.2f}"


def test_every_registered_index_is_covered() -> None:
    registered = {spec.name for spec in embedlab.registry().specs() if spec.kind == "index"}
    assert registered - {case.name for case in CASES} == set(), "add CASES for these indexes"
