"""Graph tasks as datasets: node retrieval (link prediction as ranking) on a :class:`GraphDataset`.

**Node retrieval.** A fraction of the edges is held out; the encoder is fitted on the remaining
*training graph* only (the corpus carries it). Every node is a document; a query is a node with at
least one held-out edge, and its relevant documents (grade 1) are its held-out neighbours. A query's
own node and its training neighbours are *excluded* from its ranking (``Split.exclude``), as link
prediction ranks only the pairs the model has not seen; so every ranking metric and significance
test of an experiment applies unchanged.

Held-out edges are drawn uniformly from a seeded permutation, skipping an edge when removing it
would leave an endpoint without training edges: every node keeps a neighbourhood to be embedded
from. ``valid`` holds out a second, disjoint set for tuning (split ``valid``; the ``test`` split's
rankings exclude those edges too, as known ones).

**Node classification** uses the whole graph and its labels (``GraphDataset.graph``): see
:mod:`embedlab.graph.classification`.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.graph.graph import Graph


@attrs.frozen(eq=False)
class NodeCorpus(Corpus):
    """A corpus whose documents are the nodes of ``graph`` (ids = node ids, texts = node ids), the
    graph a graph encoder is fitted on. A pipeline's embedding-cache key covers the graph's edges
    (``graph.content_hash``), so cached vectors of one training graph are never served for another."""

    graph: Graph = attrs.field(kw_only=True)

    @classmethod
    def of(cls, graph: Graph) -> NodeCorpus:
        return cls(graph.node_ids, graph.node_ids.tolist(), graph=graph)


@attrs.frozen(eq=False)
class GraphDataset(Dataset):
    """A dataset whose corpus is a :class:`NodeCorpus` over the training graph; ``graph`` is the
    whole graph (with labels), which node classification embeds."""

    graph: Graph = attrs.field(kw_only=True)

    @property
    def training_graph(self) -> Graph:
        return self.corpus.graph  # type: ignore[attr-defined]


def holdout_edges(graph: Graph, n_edges: int, rng: np.random.Generator,
                  keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Choose up to ``n_edges`` edges to hold out (as ``(k, 2)`` positions) such that no node loses
    its last edge; return them and the updated per-node edge counts. ``keep`` marks edges that may
    not be chosen (an earlier hold-out)."""
    edges = graph.edges()
    loops = edges[:, 0] == edges[:, 1]
    candidates = np.flatnonzero(~loops if keep is None else ~loops & ~keep)
    counts = np.bincount(edges[~loops].ravel(), minlength=graph.n_nodes)
    if keep is not None:
        counts -= np.bincount(edges[keep & ~loops].ravel(), minlength=graph.n_nodes)
    chosen = []
    for index in rng.permutation(candidates).tolist():
        if len(chosen) == n_edges:
            break
        u, v = edges[index]
        if counts[u] > 1 and counts[v] > 1:
            counts[u] -= 1
            counts[v] -= 1
            chosen.append(index)
    mask = np.zeros(len(edges), dtype=bool)
    mask[chosen] = True
    return mask, edges


def _without(graph: Graph, pairs: np.ndarray) -> Graph:
    """``graph`` minus the edges ``pairs`` (both directions when undirected)."""
    if not len(pairs):
        return graph
    rows, cols = pairs[:, 0], pairs[:, 1]
    if not graph.directed:
        rows, cols = np.concatenate([rows, cols]), np.concatenate([cols, rows])
    removal = sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=graph.adjacency.shape)
    removal.data[:] = 1.0
    kept = graph.adjacency - graph.adjacency.multiply(removal)
    return graph.with_adjacency(kept)


def _judgments(graph: Graph, pairs: np.ndarray) -> dict[str, dict[str, int]]:
    ids = graph.node_ids
    qrels: dict[str, dict[str, int]] = {}
    directions = [pairs] if graph.directed else [pairs, pairs[:, ::-1]]
    for block in directions:
        for u, v in block.tolist():
            qrels.setdefault(str(ids[u]), {})[str(ids[v])] = 1
    return qrels


def _known(graph: Graph, queries: list[str]) -> dict[str, list[str]]:
    """Per query: its own node and its (out-)neighbours in ``graph``: what its ranking excludes."""
    ids = graph.node_ids
    return {query: [query, *ids[graph.neighbours(graph.position[query])].tolist()] for query in queries}


def _sample(qrels: dict[str, dict[str, int]], max_queries: int | None, rng: np.random.Generator) -> dict:
    if max_queries is None or len(qrels) <= max_queries:
        return qrels
    chosen = sorted(rng.choice(sorted(qrels), size=max_queries, replace=False).tolist())
    return {q: qrels[q] for q in chosen}


def node_retrieval(graph: Graph, *, holdout: float = 0.1, valid: float = 0.0, seed: int = 0,
                   max_queries: int | None = None, name: str | None = None) -> GraphDataset:
    """The node-retrieval dataset of ``graph`` (see the module docstring): splits ``test`` (and
    ``valid`` when ``valid > 0``); ``max_queries`` keeps a seeded sample of each split's queries."""
    for label, value in (("holdout", holdout), ("valid", valid)):
        if not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise ConfigError(f"node retrieval: {label} must be a fraction in [0, 1), got {value!r}")
    if holdout <= 0:
        raise ConfigError("node retrieval: holdout must be > 0 (the test split is the held-out edges)")
    if holdout + valid >= 1:
        raise ConfigError(f"node retrieval: holdout + valid = {holdout + valid} leaves no training edges")
    if max_queries is not None and (not isinstance(max_queries, int) or max_queries < 2):
        raise ConfigError(f"node retrieval: max_queries must be an integer >= 2, got {max_queries!r}")
    graph.require("node retrieval", no_isolated=True)
    rng = np.random.default_rng(seed)
    all_edges = graph.edges()
    n_real = int(np.count_nonzero(all_edges[:, 0] != all_edges[:, 1]))
    test_mask, edges = holdout_edges(graph, int(round(holdout * n_real)), rng)
    valid_mask = np.zeros_like(test_mask)
    if valid > 0:
        valid_mask, _ = holdout_edges(graph, int(round(valid * n_real)), rng, keep=test_mask)
    test_pairs, valid_pairs = edges[test_mask], edges[valid_mask]
    if not len(test_pairs):
        raise InvalidInputError(f"node retrieval: no edge of {graph.name!r} can be held out without "
                                "isolating a node (every edge ends at a node of degree 1)")
    validation_graph = _without(graph, test_pairs)  # training + valid edges
    training = _without(validation_graph, valid_pairs)
    qrels = {"test": _sample(_judgments(graph, test_pairs), max_queries, rng)}
    exclude = {"test": _known(validation_graph, list(qrels["test"]))}
    if len(valid_pairs):
        qrels["valid"] = _sample(_judgments(graph, valid_pairs), max_queries, rng)
        exclude["valid"] = _known(training, list(qrels["valid"]))
    metadata: dict[str, Any] = {
        "task": "node-retrieval", "graph": graph.name, "nodes": graph.n_nodes, "edges": graph.n_edges,
        "directed": graph.directed, "held_out_test_edges": int(len(test_pairs)),
        "held_out_valid_edges": int(len(valid_pairs)), "training_edges": training.n_edges,
        "holdout": holdout, "valid": valid, "seed": seed,
    }
    return GraphDataset(name or f"{graph.name}/node-retrieval", NodeCorpus.of(training),
                        Queries(graph.node_ids, graph.node_ids.tolist()), qrels, metadata,
                        exclude=exclude, graph=graph)
