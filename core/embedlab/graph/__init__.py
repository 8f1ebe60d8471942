"""Graphs as data: a :class:`Graph` (scipy.sparse adjacency over named nodes, optional labels and
features), readers for the common formats, the registered graph datasets, the node-retrieval task
(:func:`node_retrieval`: link prediction as ranking with qrels), the node-classification protocol
(:func:`classify_nodes`) and the base class of graph encoders (:class:`NodeEncoder`).

::

    import embedlab
    from embedlab.pipeline import Pipeline

    dataset = embedlab.load_dataset("karate", holdout=0.2)   # a GraphDataset
    pipeline = Pipeline.from_names(encoder={"name": "spectral", "dim": 8}, index="exact")
    pipeline.build(dataset.corpus)                              # fits on the training graph
    split = dataset.split("test")
    ranking = pipeline.search(split.queries, k=10, exclude=split.exclude)
"""

from embedlab.graph.classification import ClassificationProtocol, ClassificationResult, classify_nodes
from embedlab.graph.encoders import NodeEncoder, SpectralEncoder
from embedlab.graph.graph import Graph, graph_from_edges, label_matrix
from embedlab.graph.io import load_graph, read_labels
from embedlab.graph.karate import karate_graph
from embedlab.graph.tasks import GraphDataset, NodeCorpus, node_retrieval

__all__ = [
    "ClassificationProtocol", "ClassificationResult", "Graph", "GraphDataset", "NodeCorpus", "NodeEncoder",
    "SpectralEncoder", "classify_nodes", "graph_from_edges", "karate_graph", "label_matrix", "load_graph",
    "node_retrieval", "read_labels",
]
