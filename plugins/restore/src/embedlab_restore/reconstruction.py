"""RESTORE's node-level k-hop graph reconstruction (Yip et al., 2023) for any node embedding.

For a node ``u``, the ground truth ``N_k(u)`` is every other node within ``k`` hops. All other nodes
are ranked by embedding similarity to ``u`` (``dot``, ``cosine`` or negative ``euclidean``
distance); ``AP(u)`` is the mean of the precision at the rank of each node of ``N_k(u)`` (the GEM
``computeMAP`` convention, which equals trec_eval's AP on the full ranking) and ``mAP_k`` the mean
over nodes with a non-empty ``N_k(u)``. The precision curve is GEM's ``computePrecisionCurve``: all
node pairs sorted by similarity, precision of the top ``K`` pairs against the ``k``-hop pairs.

Scores are ``queries @ documents.T`` block by block, so a separate document side gives asymmetric
scorers (the adjacency oracle: rows of ``A`` against the identity scores ``A[u, v]``, mAP_1 = 1).
For large graphs, ``sample`` evaluates a seeded subset of query nodes (every node stays a candidate).
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.errors import InvalidInputError
from embedlab.graph import Graph
from embedlab.sampling import sample_positions

SIMILARITIES = ("dot", "cosine", "euclidean")


def khop_reach(graph: Graph, hops: int, rows: np.ndarray | None = None) -> sp.csr_matrix:
    """0/1 ``(len(rows), n)`` matrix: node ``v`` within ``hops`` of ``rows[i]`` (itself excluded)."""
    if isinstance(hops, bool) or not isinstance(hops, (int, np.integer)) or hops < 1:
        raise InvalidInputError(f"restore: hops must be an integer >= 1, got {hops!r}")
    rows = np.arange(graph.n_nodes) if rows is None else np.asarray(rows, dtype=np.int64)
    links = (graph.adjacency > 0).astype(np.float32).tocsr()
    start = sp.csr_matrix((np.ones(rows.size, np.float32), (np.arange(rows.size), rows)),
                          shape=(rows.size, graph.n_nodes))
    reach = start
    for _ in range(hops):
        reach = reach + reach @ links
        reach.data[:] = 1.0
    reach = reach - start.multiply(reach)
    reach.eliminate_zeros()
    return sp.csr_matrix(reach)


def _prepare(x: Any, similarity: str) -> Any:
    if similarity != "cosine":
        return x
    if sp.issparse(x):
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1))).ravel()
        return sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ x
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _squared_norms(x: Any) -> np.ndarray:
    return np.asarray(x.multiply(x).sum(axis=1)).ravel() if sp.issparse(x) else (x ** 2).sum(axis=1)


def _scores(queries: Any, documents: Any, similarity: str) -> np.ndarray:
    product = queries @ documents.T
    product = product.toarray() if sp.issparse(product) else np.asarray(product)
    if similarity != "euclidean":
        return product.astype(np.float64)
    q2, d2 = _squared_norms(queries), _squared_norms(documents)
    return -np.sqrt(np.maximum(q2[:, None] + d2[None, :] - 2 * product, 0))


@attrs.frozen(eq=False)
class Reconstruction:
    """mAP_k, per-node AP, and the precision curve (precision of the top ``K`` pairs, K in ``cutoffs``)."""

    hops: int
    map: float
    nodes: np.ndarray
    average_precision: np.ndarray
    cutoffs: np.ndarray
    precision: np.ndarray
    mean_reach: float
    """Mean ``|N_k(u)| / (n - 1)``: the mAP a random ranking is expected to score, roughly."""

    def to_json(self) -> dict[str, Any]:
        return {"hops": self.hops, "mAP": self.map, "nodes": int(self.nodes.size), "mean_reach": self.mean_reach,
                "precision_curve": dict(zip(self.cutoffs.tolist(), self.precision.tolist()))}


def _check(x: Any, n: int, what: str) -> Any:
    if x is None:
        return None
    if not sp.issparse(x):
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise InvalidInputError(f"restore: {what} must be a 2-d matrix, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise InvalidInputError(f"restore: {what} contain NaN or infinity")
    else:
        x = sp.csr_matrix(x, dtype=np.float64)
    if x.shape[0] != n:
        raise InvalidInputError(f"restore: {x.shape[0]} {what} rows for a graph of {n} nodes")
    return x


def evaluate_reconstruction(graph: Graph, vectors: Any, *, hops: Sequence[int] = (1, 2, 3),
                            similarity: str = "dot", documents: Any = None, sample: int | None = None,
                            seed: int = 0, cutoffs: Sequence[int] | None = None,
                            block: int = 512) -> dict[int, Reconstruction]:
    """RESTORE's reconstruction scores of ``vectors`` (rows = ``graph``'s nodes) at each ``k`` in
    ``hops``; ``documents`` (default: ``vectors``) is the candidate side."""
    if similarity not in SIMILARITIES:
        raise InvalidInputError(f"restore: similarity must be one of {', '.join(SIMILARITIES)}, got {similarity!r}")
    n = graph.n_nodes
    queries = _prepare(_check(vectors, n, "vectors"), similarity)
    docs = queries if documents is None else _prepare(_check(documents, n, "documents"), similarity)
    if queries.shape[1] != docs.shape[1]:
        raise InvalidInputError(f"restore: vectors have {queries.shape[1]} columns, documents {docs.shape[1]}")
    nodes = np.arange(n) if sample is None else sample_positions(n, sample, seed)
    hops = sorted(set(hops))
    cutoffs = np.asarray(cutoffs if cutoffs is not None else
                         [c for c in 2 ** np.arange(0, 20) if c <= nodes.size * (n - 1)], dtype=np.int64)
    depth = int(cutoffs.max()) if cutoffs.size else 0
    ap = {k: np.full(nodes.size, np.nan) for k in hops}
    top_scores, top_hits = np.zeros(0), {k: np.zeros(0, bool) for k in hops}
    reach_share = {k: [] for k in hops}
    for start in range(0, nodes.size, block):
        rows = nodes[start:start + block]
        scores = _scores(queries[rows], docs, similarity)
        scores[np.arange(rows.size), rows] = -np.inf  # a node is never its own candidate
        order = np.argsort(-scores, axis=1, kind="stable")[:, :n - 1]
        sorted_scores = np.take_along_axis(scores, order, axis=1)
        keep = np.argsort(-sorted_scores[:, :depth].ravel(), kind="stable")[:depth] if depth else np.zeros(0, int)
        merged_scores = np.concatenate([top_scores, sorted_scores[:, :depth].ravel()[keep]])
        best = np.argsort(-merged_scores, kind="stable")[:depth]
        top_scores = merged_scores[best]
        for k in hops:
            truth = khop_reach(graph, k, rows).toarray().astype(bool)
            relevant = np.take_along_axis(truth, order, axis=1)
            counts = truth.sum(axis=1)
            precision = np.cumsum(relevant, axis=1) / np.arange(1, n)
            with np.errstate(invalid="ignore", divide="ignore"):
                ap[k][start:start + rows.size] = np.where(counts > 0, (precision * relevant).sum(1) / counts, np.nan)
            reach_share[k].extend((counts / (n - 1)).tolist())
            merged = np.concatenate([top_hits[k], relevant[:, :depth].ravel()[keep]])
            top_hits[k] = merged[best]
    results = {}
    for k in hops:
        hits = np.cumsum(top_hits[k])
        precision = np.array([hits[c - 1] / c if c <= hits.size else np.nan for c in cutoffs])
        valid = ~np.isnan(ap[k])
        if not valid.any():
            raise InvalidInputError(f"restore: no evaluated node has a {k}-hop neighbour")
        results[k] = Reconstruction(k, float(ap[k][valid].mean()), nodes[valid], ap[k][valid], cutoffs, precision,
                                    float(np.mean(reach_share[k])))
    return results


def label_reconstruction(graph: Graph, vectors: Any, *, similarity: str = "cosine", sample: int | None = None,
                         seed: int = 0, block: int = 512) -> dict[str, float]:
    """The semantic test for labelled graphs (our stand-in for RESTORE's word-similarity tests on
    CSKG): ``label_mAP``, the mAP of ranking nodes that share a label with the query above the
    others, and ``distance_ratio``, the mean Euclidean distance between L2-normalised embeddings of
    same-label pairs over that of different-label pairs (< 1: labels are preserved)."""
    if graph.labels is None:
        raise InvalidInputError(f"restore: graph {graph.name!r} has no labels for the semantic test")
    labels = (graph.labels > 0).astype(np.float64).tocsr()
    same = (labels @ labels.T > 0).astype(np.float64).tocsr()
    same.setdiag(0)
    same.eliminate_zeros()
    kin = Graph(same, graph.node_ids, name=f"{graph.name}-labels")  # "1 hop" = shares a label
    result = evaluate_reconstruction(kin, vectors, hops=(1,), similarity=similarity, sample=sample, seed=seed,
                                     cutoffs=[], block=block)[1]
    unit = _prepare(np.asarray(vectors, dtype=np.float64), "cosine")
    rows = np.random.default_rng(seed).choice(graph.n_nodes, size=min(graph.n_nodes, 2000), replace=False)
    distances = np.sqrt(np.maximum(2 - 2 * unit[rows] @ unit[rows].T, 0))
    mask = same[rows][:, rows].toarray() > 0
    off_diagonal = ~np.eye(rows.size, dtype=bool)
    return {"label_mAP": result.map, "label_mean_reach": result.mean_reach,
            "distance_ratio": float(distances[mask].mean() / distances[~mask & off_diagonal].mean())}
