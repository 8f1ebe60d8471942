"""Registered graph datasets: each returns a node-retrieval :class:`GraphDataset` whose ``graph``
(the whole graph, with labels) also serves node classification.

``karate`` is built into the core. The others read the files of ``../shared/data`` (their
SOURCE.md says where each comes from), found in order at: the ``path`` parameter, the folder named by
``$EMBEDLAB_GRAPH_DATA``, ``<checkout>/../shared/data`` beside the embedlab checkout the core was
installed from, then ``../shared/data`` relative to the current directory. ``graph`` reads any file
(``path = "my.edgelist"``, ``labels = "my-labels.txt"``).

Every dataset takes the node-retrieval parameters ``holdout`` (share of edges held out as the test
split, default 0.1), ``valid`` (a second held-out share, split ``valid``), ``seed`` and
``max_queries`` (a seeded sample of each split's queries). Directed citation graphs (cora,
citeseer, wiki-graph) are made undirected and self-loops dropped, as node-embedding papers use them;
the published numbers we compare with were measured that way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from embedlab.errors import InvalidInputError
from embedlab.graph.graph import Graph
from embedlab.graph.io import load_graph, read_labels
from embedlab.graph.karate import karate_graph
from embedlab.graph.tasks import GraphDataset, node_retrieval

ENV_VAR = "EMBEDLAB_GRAPH_DATA"


def data_roots() -> list[Path]:
    """Folders searched for the shared data sets, in order."""
    roots = [Path(os.environ[ENV_VAR]).expanduser()] if os.environ.get(ENV_VAR) else []
    checkout = Path(__file__).resolve().parents[3]  # <checkout>/core/embedlab/graph/data.py
    return [*roots, checkout.parent / "shared" / "data", Path.cwd().parent / "shared" / "data",
            Path.cwd() / "shared" / "data"]


def locate(relative: str, path: str | Path | None = None) -> Path:
    """The file ``relative`` (``blogcatalog/blogcatalog.mat``) under the first root that has it,
    or ``path`` itself when given."""
    if path is not None:
        file = Path(path).expanduser()
        if not file.exists():
            raise InvalidInputError(f"graph data {file} does not exist")
        return file
    tried = [root / relative for root in data_roots()]
    for file in tried:
        if file.exists():
            return file
    raise InvalidInputError(f"graph data {relative!r} not found (tried: {', '.join(map(str, tried))}); "
                            f"pass path=\"...\" or set {ENV_VAR} to the folder holding {relative.split('/')[0]}/")


def _task(graph: Graph, holdout: float, valid: float, seed: int, max_queries: int | None) -> GraphDataset:
    return node_retrieval(graph, holdout=holdout, valid=valid, seed=seed, max_queries=max_queries,
                          name=graph.name)


def karate(holdout: float = 0.1, valid: float = 0.0, seed: int = 0, max_queries: int | None = None) -> GraphDataset:
    """Zachary's karate club: 34 nodes, 78 edges, 2 factions (built in)."""
    return _task(karate_graph(), holdout, valid, seed, max_queries)


def blogcatalog(path: str | None = None, holdout: float = 0.1, valid: float = 0.0, seed: int = 0,
                max_queries: int | None = None) -> GraphDataset:
    """BlogCatalog (Tang & Liu 2009; DeepWalk's .mat): 10,312 bloggers, 333,983 edges, 39 labels."""
    graph = load_graph(locate("blogcatalog/blogcatalog.mat", path), name="blogcatalog")
    return _task(graph, holdout, valid, seed, max_queries)


def _citation(file: str, name: str) -> Callable[..., GraphDataset]:
    def factory(path: str | None = None, holdout: float = 0.1, valid: float = 0.0, seed: int = 0,
                max_queries: int | None = None) -> GraphDataset:
        graph = load_graph(locate(f"gnn-benchmark-npz/{file}", path), directed=True, self_loops="drop",
                           name=name).to_undirected()
        return _task(graph, holdout, valid, seed, max_queries)

    factory.__name__ = name
    factory.__doc__ = (f"{name.capitalize()} citations (gnn-benchmark .npz), made undirected, self-loops "
                       "dropped; one class per paper, bag-of-words features.")
    return factory


def _airports(region: str) -> Callable[..., GraphDataset]:
    def factory(path: str | None = None, holdout: float = 0.1, valid: float = 0.0, seed: int = 0,
                max_queries: int | None = None) -> GraphDataset:
        folder = locate("airports", path)
        graph = load_graph(folder / f"{region}-airports.edgelist", self_loops="drop", name=f"airports-{region}")
        graph = read_labels(folder / f"labels-{region}-airports.txt", graph)
        return _task(graph, holdout, valid, seed, max_queries)

    factory.__name__ = f"airports_{region}"
    region_name = {"usa": "USA"}.get(region, region.capitalize())
    factory.__doc__ = (f"{region_name} air-traffic network (struc2vec); labels: activity quartile "
                       "(structural role), self-loops dropped.")
    return factory


def wiki_graph(path: str | None = None, holdout: float = 0.1, valid: float = 0.0, seed: int = 0,
               max_queries: int | None = None) -> GraphDataset:
    """Wiki (2,405 pages, 17 classes; LINE/GraphEmbedding demos), made undirected, self-loops dropped,
    and the pages left without links (whose only link was to themselves) dropped."""
    folder = locate("wiki-graph", path)
    graph = load_graph(folder / "Wiki_edgelist.txt", directed=True, self_loops="drop",
                       name="wiki-graph").to_undirected()
    graph = read_labels(folder / "wiki_labels.txt", graph)
    linked = np.setdiff1d(np.arange(graph.n_nodes), graph.isolated())
    return _task(graph.subgraph(linked), holdout, valid, seed, max_queries)


def graph_file(path: str, labels: str | None = None, format: str | None = None, directed: bool = False,
               self_loops: str = "error", holdout: float = 0.1, valid: float = 0.0, seed: int = 0,
               max_queries: int | None = None) -> GraphDataset:
    """Any graph file (.mat, .npz, .adjlist or an edge list) and optional ``node label`` file; a
    directed graph is kept directed (queries rank their out-neighbours)."""
    graph = load_graph(path, format=format, labels=labels, directed=directed, self_loops=self_loops)
    return _task(graph, holdout, valid, seed, max_queries)


#: Name -> factory, registered by the core as datasets.
GRAPH_DATASETS: dict[str, Callable[..., Any]] = {
    "karate": karate,
    "blogcatalog": blogcatalog,
    "cora": _citation("cora.npz", "cora"),
    "citeseer": _citation("citeseer.npz", "citeseer"),
    "airports-brazil": _airports("brazil"),
    "airports-europe": _airports("europe"),
    "airports-usa": _airports("usa"),
    "wiki-graph": wiki_graph,
    "graph": graph_file,
}
