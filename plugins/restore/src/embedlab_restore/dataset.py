"""The ``restore`` dataset: k-hop reconstruction as a retrieval task, so ``embedlab run`` scores it
with any encoder and index and compares pipelines with significance tests.

Every node of the *whole* graph is a document and the encoder is fitted on the whole graph (the
reconstruction setting: nothing is held out). A query is a node; its relevant documents are the
nodes within ``hops`` hops; its own node is excluded from its ranking. ``AP`` over a ranking of
depth ``k >= n - 1`` is then RESTORE's AP(u), and its mean mAP_k.
"""

from __future__ import annotations

import numpy as np

from embedlab.dataset import Queries
from embedlab.errors import ConfigError
from embedlab.graph import GraphDataset, NodeCorpus
from embedlab.sampling import sample_positions
from embedlab_restore.reconstruction import khop_reach


def restore_dataset(graph: str = "karate", hops: int = 1, max_queries: int | None = None, seed: int = 0,
                    path: str | None = None) -> GraphDataset:
    """k-hop reconstruction of a registered graph dataset (``graph = "blogcatalog"``, ``path`` passed on)."""
    import embedlab

    if graph == "restore":
        raise ConfigError("restore: graph must name a graph dataset such as karate or cora")
    source = embedlab.load_dataset(graph, **({"path": path} if path else {}))
    if not isinstance(source, GraphDataset):
        raise ConfigError(f"restore: dataset {graph!r} is not a graph dataset")
    full = source.graph
    rows = np.arange(full.n_nodes) if max_queries is None else sample_positions(full.n_nodes, max_queries, seed)
    reach = khop_reach(full, hops, rows)
    ids = full.node_ids
    qrels = {}
    for i, row in enumerate(rows.tolist()):
        found = reach.indices[reach.indptr[i]:reach.indptr[i + 1]]
        if found.size:
            qrels[str(ids[row])] = {str(ids[v]): 1 for v in found.tolist()}
    exclude = {"test": {query: [query] for query in qrels}}
    metadata = {"task": "reconstruction", "graph": full.name, "hops": hops, "nodes": full.n_nodes,
                "edges": full.n_edges, "queries": len(qrels)}
    return GraphDataset(f"{full.name}/restore-{hops}hop", NodeCorpus.of(full), Queries(ids, ids.tolist()),
                        {"test": qrels}, metadata, exclude=exclude, graph=full)
