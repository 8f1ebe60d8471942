"""Graph encoders: fitted on a graph, they encode node ids, so any index, compressor or metric
takes their vectors like a text encoder's.

:class:`NodeEncoder` is the base class: a subclass declares what it needs from the graph
(``requires_*`` flags, checked by :meth:`Graph.require` with the encoder's name in the error) and
implements :meth:`NodeEncoder.embed` (graph -> ``(n_nodes, dim)`` matrix). ``encode_documents`` and
``encode_queries`` then return the rows of the given node ids. :class:`SpectralEncoder` is the core's
own baseline: the Laplacian eigenmap (bottom eigenvectors of the normalised Laplacian).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Sequence

import attrs
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.graph.graph import Graph


class NodeEncoder(Component):
    """Base class of graph encoders (the :class:`embedlab.GraphEncoder` capability)."""

    kind: ClassVar[str] = "encoder"
    requires_undirected: ClassVar[bool] = True
    requires_no_self_loops: ClassVar[bool] = True
    requires_no_isolated: ClassVar[bool] = True

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._graph: Graph | None = None
        self._vectors: np.ndarray | None = None

    # -- what subclasses implement ------------------------------------------------------------
    def embed(self, graph: Graph) -> np.ndarray:
        """``(graph.n_nodes, dim)`` vectors of every node of ``graph`` (a checked graph)."""
        raise NotImplementedError

    # -- the encoder protocol -------------------------------------------------------------------
    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return int(self.config.dim)

    def check_graph(self, graph: Graph) -> None:
        """Raise a clear error when this encoder cannot embed ``graph``."""
        if not isinstance(graph, Graph):
            raise InvalidInputError(f"{self.name}: fit_graph needs an embedlab.graph.Graph, got "
                                    f"{type(graph).__name__}")
        graph.require(self.name, undirected=self.requires_undirected,
                      no_self_loops=self.requires_no_self_loops, no_isolated=self.requires_no_isolated)

    def fit_graph(self, graph: Graph) -> NodeEncoder:
        """Embed every node of ``graph``; afterwards node ids can be encoded."""
        self.check_graph(graph)
        vectors = np.ascontiguousarray(self.embed(graph), dtype=np.float32)
        if vectors.shape != (graph.n_nodes, self.dim):
            raise InvalidInputError(f"{self.name}: embed returned shape {vectors.shape}, expected "
                                    f"({graph.n_nodes}, {self.dim})")
        if not np.all(np.isfinite(vectors)):
            raise InvalidInputError(f"{self.name}: embedding produced NaN or infinity")
        self._graph, self._vectors = graph, vectors
        return self

    @property
    def node_vectors(self) -> np.ndarray:
        """The fitted ``(n_nodes, dim)`` float32 matrix, rows in the graph's node order."""
        if self._vectors is None:
            raise NotFittedError(f"{self.name}: call fit_graph(graph) before encoding nodes")
        return self._vectors

    @property
    def graph(self) -> Graph:
        if self._graph is None:
            raise NotFittedError(f"{self.name}: call fit_graph(graph) first")
        return self._graph

    def encode_nodes(self, node_ids: Sequence[str]) -> np.ndarray:
        vectors = self.node_vectors
        return vectors[self.graph.positions(list(node_ids), "encoded ids")]

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_nodes(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self.encode_nodes(texts)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """The fitted vectors and node ids (the graph itself is not saved)."""
        from embedlab.persistence import save_state

        save_state(path, self, arrays={"vectors": self.node_vectors, "node_ids": self.graph.node_ids})

    @classmethod
    def load(cls, path: str | Path) -> NodeEncoder:
        """An encoder that encodes the saved node ids (its ``graph`` has the nodes, no edges)."""
        from embedlab.persistence import load_state

        state = load_state(path, kind=cls.kind, name=cls.name)
        encoder = state.build(cls)
        vectors = state.array("vectors", kinds="f", shape=(None, encoder.dim), finite=True)
        ids = state.array("node_ids", kinds="U", shape=(vectors.shape[0],))
        try:
            encoder._graph = Graph(sp.csr_matrix((ids.size, ids.size)), ids, name=cls.name)
        except InvalidInputError as error:
            raise state.error(f"node_ids.npy: {error}") from None
        encoder._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        return encoder


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


class SpectralEncoder(NodeEncoder):
    """Laplacian eigenmap (Belkin & Niyogi, 2003): the ``dim`` eigenvectors of the symmetric
    normalised Laplacian with the smallest non-trivial eigenvalues, rows scaled by ``D^-1/2``
    (the random-walk Laplacian's eigenvectors; a connected component adds a trivial one each),
    columns standardised (zero mean, unit variance) as FastRP standardises its output, so a
    classifier with a fixed regularisation treats both alike."""

    name = "spectral"

    @attrs.frozen
    class Config:
        dim: int = attrs.field(default=128, validator=_positive)
        seed: int = 0

    def embed(self, graph: Graph) -> np.ndarray:
        n, dim = graph.n_nodes, self.config.dim
        if dim + 1 >= n:
            raise InvalidInputError(f"spectral: dim={dim} needs a graph of more than {dim + 1} nodes "
                                    f"({graph.name!r} has {n})")
        scale = 1.0 / np.sqrt(graph.degrees)
        normalised = sp.diags(scale) @ graph.adjacency @ sp.diags(scale)
        # the largest eigenvalues of I + D^-1/2 A D^-1/2 are the smallest of the Laplacian
        shifted = (normalised + sp.identity(n)).tocsr()
        start = np.random.default_rng(self.config.seed).standard_normal(n)
        if n <= 2000:
            values, vectors = np.linalg.eigh(shifted.toarray())
        else:
            values, vectors = spla.eigsh(shifted, k=dim + 1, which="LA", v0=start, tol=1e-6)
        order = np.argsort(-values)[1:dim + 1]
        embedding = vectors[:, order] * scale[:, None]
        return (embedding - embedding.mean(axis=0)) / np.maximum(embedding.std(axis=0), 1e-12)
