"""A graph as data: a sparse adjacency matrix over named nodes, with optional labels and features.

Node ``i`` of the adjacency matrix is the node whose id is ``node_ids[i]`` (ids are strings, as
document ids are). ``labels`` is a 0/1 ``(n_nodes, n_labels)`` sparse matrix, so multi-label data
(BlogCatalog) and single-label data (Cora, airports) share one form; a node without labels has an
empty row. ``features`` is an optional ``(n_nodes, f)`` sparse or dense matrix.

The constructor checks what every graph must satisfy (square, finite, non-negative weights, unique
ids, a symmetric matrix when ``directed`` is false). What only some methods need (no self-loops,
no isolated nodes, undirected input) is checked by :meth:`Graph.require`, which the method calls
with its own name so that the error says who refused the graph and why.
"""

from __future__ import annotations

import hashlib
from functools import cached_property
from typing import Any, Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.errors import InvalidInputError


def _csr(matrix: Any) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        matrix = np.asarray(matrix)
        if matrix.ndim != 2:
            raise InvalidInputError(f"graph: adjacency must be a 2-d matrix, got shape {matrix.shape}")
    csr = sp.csr_matrix(matrix, dtype=np.float64)
    csr.sum_duplicates()
    csr.eliminate_zeros()
    csr.sort_indices()
    return csr


def _optional_csr(matrix: Any) -> sp.csr_matrix | None:
    return None if matrix is None else sp.csr_matrix(matrix, dtype=np.float64)


def _examples(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(str(v) for v in list(values)[:limit])
    return shown + (", ..." if len(values) > limit else "")


@attrs.frozen(eq=False)
class Graph:
    """Nodes, weighted edges, optional labels and features (see the module docstring)."""

    adjacency: sp.csr_matrix = attrs.field(converter=_csr)
    node_ids: np.ndarray = attrs.field(default=None)
    directed: bool = False
    labels: sp.csr_matrix | None = attrs.field(default=None, converter=_optional_csr)
    label_names: np.ndarray | None = None
    features: Any = None
    name: str = "graph"

    def __attrs_post_init__(self) -> None:
        n, m = self.adjacency.shape
        if n != m:
            raise InvalidInputError(f"graph {self.name!r}: adjacency must be square, got {n}x{m}")
        if n == 0:
            raise InvalidInputError(f"graph {self.name!r}: no nodes")
        ids = np.arange(n).astype(str) if self.node_ids is None else np.asarray(
            [str(v) for v in self.node_ids], dtype=str)
        object.__setattr__(self, "node_ids", ids)
        if ids.size != n:
            raise InvalidInputError(f"graph {self.name!r}: {ids.size} node ids for {n} nodes")
        unique, counts = np.unique(ids, return_counts=True)
        if unique.size != n:
            raise InvalidInputError(f"graph {self.name!r}: duplicate node ids, e.g. "
                                    f"{_examples(unique[counts > 1].tolist())}")
        data = self.adjacency.data
        if not np.all(np.isfinite(data)):
            raise InvalidInputError(f"graph {self.name!r}: edge weights contain NaN or infinity")
        if np.any(data < 0):
            raise InvalidInputError(f"graph {self.name!r}: negative edge weights")
        if not self.directed and (self.adjacency != self.adjacency.T).nnz:
            raise InvalidInputError(
                f"graph {self.name!r}: the adjacency matrix is not symmetric, so the graph is directed; "
                "pass directed=True, or make it undirected with Graph.to_undirected()")
        self._check_labels(n)
        if self.features is not None and self.features.shape[0] != n:
            raise InvalidInputError(f"graph {self.name!r}: features have {self.features.shape[0]} rows "
                                    f"for {n} nodes")

    def _check_labels(self, n: int) -> None:
        if self.labels is None:
            return
        if self.labels.shape[0] != n:
            raise InvalidInputError(f"graph {self.name!r}: labels have {self.labels.shape[0]} rows for "
                                    f"{n} nodes")
        if self.labels.nnz and not np.all(self.labels.data == 1):
            raise InvalidInputError(f"graph {self.name!r}: labels must be a 0/1 matrix")
        if self.label_names is not None and len(self.label_names) != self.labels.shape[1]:
            raise InvalidInputError(f"graph {self.name!r}: {len(self.label_names)} label names for "
                                    f"{self.labels.shape[1]} label columns")

    # -- sizes ------------------------------------------------------------------------------
    @property
    def n_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    def __len__(self) -> int:
        return self.n_nodes

    @property
    def n_edges(self) -> int:
        """Edges counted once: undirected edges (self-loops included) or directed arcs."""
        if self.directed:
            return int(self.adjacency.nnz)
        return int((self.adjacency.nnz + self.n_self_loops) // 2)

    @property
    def n_self_loops(self) -> int:
        return int(np.count_nonzero(self.adjacency.diagonal()))

    @cached_property
    def degrees(self) -> np.ndarray:
        """Weighted out-degree (row sums) of every node, float64."""
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    @cached_property
    def position(self) -> dict[str, int]:
        """Map from node id to row position."""
        return {node: i for i, node in enumerate(self.node_ids.tolist())}

    def positions(self, ids: Sequence[str], what: str = "node ids") -> np.ndarray:
        """Row positions of ``ids``; unknown ids raise an error that names some of them."""
        position = self.position
        unknown = [i for i in ids if i not in position]
        if unknown:
            raise InvalidInputError(f"graph {self.name!r}: {len(unknown)} {what} are not nodes of the "
                                    f"graph, e.g. {_examples(unknown)}")
        return np.fromiter((position[i] for i in ids), dtype=np.int64, count=len(ids))

    def isolated(self) -> np.ndarray:
        """Positions of nodes without any edge (in or out)."""
        touched = (self.degrees > 0) | (np.asarray(self.adjacency.sum(axis=0)).ravel() > 0)
        return np.flatnonzero(~touched)

    def edges(self) -> np.ndarray:
        """``(m, 2)`` int64 edge endpoints: each undirected edge once with ``u <= v``, every arc of a
        directed graph."""
        coo = self.adjacency.tocoo()
        keep = slice(None) if self.directed else coo.row <= coo.col
        return np.stack([coo.row[keep], coo.col[keep]], axis=1).astype(np.int64)

    @cached_property
    def content_hash(self) -> str:
        """sha256 over node ids, direction and the adjacency (indices and weights)."""
        digest = hashlib.sha256()
        digest.update(b"directed" if self.directed else b"undirected")
        for node in self.node_ids.tolist():
            encoded = node.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
        for array in (self.adjacency.indptr, self.adjacency.indices, self.adjacency.data):
            digest.update(np.ascontiguousarray(array, dtype=np.float64 if array.dtype.kind == "f"
                                               else np.int64).tobytes())
        return digest.hexdigest()

    # -- checks -----------------------------------------------------------------------------
    def require(self, by: str, *, undirected: bool = False, no_self_loops: bool = False,
                no_isolated: bool = False) -> None:
        """Raise :class:`InvalidInputError` naming ``by`` when the graph breaks a requirement."""
        if undirected and self.directed:
            raise InvalidInputError(f"{by} needs an undirected graph, but {self.name!r} is directed; "
                                    "use graph.to_undirected() (or directed=False when loading)")
        if no_self_loops and self.n_self_loops:
            loops = self.node_ids[np.flatnonzero(self.adjacency.diagonal())].tolist()
            raise InvalidInputError(f"{by}: graph {self.name!r} has {len(loops)} self-loop(s), e.g. at "
                                    f"{_examples(loops)}; drop them with graph.without_self_loops()")
        if no_isolated:
            isolated = self.isolated()
            if isolated.size:
                raise InvalidInputError(
                    f"{by}: graph {self.name!r} has {isolated.size} isolated node(s) (no edges), e.g. "
                    f"{_examples(self.node_ids[isolated].tolist())}; they have no neighbourhood to embed. "
                    "Remove them with graph.subgraph(...) or link them")

    # -- derived graphs ---------------------------------------------------------------------
    def to_undirected(self) -> Graph:
        """Symmetrise: an edge where either direction exists, weight = the larger of the two."""
        if not self.directed:
            return self
        return attrs.evolve(self, adjacency=self.adjacency.maximum(self.adjacency.T), directed=False)

    def without_self_loops(self) -> Graph:
        if not self.n_self_loops:
            return self
        adjacency = self.adjacency.copy()
        adjacency.setdiag(0)
        return attrs.evolve(self, adjacency=adjacency)

    def with_adjacency(self, adjacency: sp.spmatrix) -> Graph:
        """The same nodes, labels and features over other edges."""
        return attrs.evolve(self, adjacency=adjacency)

    def subgraph(self, positions: Sequence[int] | np.ndarray) -> Graph:
        """The graph induced by the nodes at ``positions`` (labels and features follow)."""
        rows = np.asarray(positions, dtype=np.int64)
        features = None if self.features is None else self.features[rows]
        return Graph(self.adjacency[rows][:, rows], self.node_ids[rows], self.directed,
                     None if self.labels is None else self.labels[rows], self.label_names, features,
                     self.name)

    def neighbours(self, position: int) -> np.ndarray:
        """Positions of the (out-)neighbours of one node."""
        start, end = self.adjacency.indptr[position], self.adjacency.indptr[position + 1]
        return self.adjacency.indices[start:end]

    def __repr__(self) -> str:
        kind = "directed" if self.directed else "undirected"
        labels = "" if self.labels is None else f", {self.labels.shape[1]} labels"
        return f"Graph({self.name!r}, {self.n_nodes} nodes, {self.n_edges} {kind} edges{labels})"


def graph_from_edges(edges: Sequence[tuple[str, str]] | np.ndarray, *, weights: Sequence[float] | None = None,
                     node_ids: Sequence[str] | None = None, directed: bool = False,
                     self_loops: str = "error", name: str = "graph") -> Graph:
    """A graph from ``(source, target)`` id pairs. Nodes are ``node_ids`` when given (so isolated
    nodes can exist), otherwise every id seen, in numeric order when all are integers and in order of
    appearance otherwise. Repeated edges keep the largest weight; an undirected edge may be listed
    in either or both directions. ``self_loops``: ``"error"``, ``"drop"`` or ``"keep"``."""
    if self_loops not in ("error", "drop", "keep"):
        raise InvalidInputError(f"self_loops must be 'error', 'drop' or 'keep', got {self_loops!r}")
    pairs = np.asarray(edges, dtype=str).reshape(-1, 2)
    if pairs.size == 0:
        raise InvalidInputError(f"graph {name!r}: no edges")
    w = np.ones(len(pairs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(pairs),):
        raise InvalidInputError(f"graph {name!r}: {w.size} weights for {len(pairs)} edges")
    ids = _node_order(pairs) if node_ids is None else np.asarray([str(v) for v in node_ids], dtype=str)
    loops = pairs[:, 0] == pairs[:, 1]
    if loops.any() and self_loops == "error":
        raise InvalidInputError(f"graph {name!r}: {int(loops.sum())} self-loop(s), e.g. at "
                                f"{_examples(pairs[loops, 0].tolist())}; load with self_loops='drop' "
                                "(or 'keep')")
    if self_loops == "drop":
        pairs, w = pairs[~loops], w[~loops]  # a node seen only in self-loops stays, isolated
    position = {node: i for i, node in enumerate(ids.tolist())}
    unknown = sorted({v for v in pairs.ravel().tolist() if v not in position})
    if unknown:
        raise InvalidInputError(f"graph {name!r}: edges name {len(unknown)} node(s) missing from "
                                f"node_ids, e.g. {_examples(unknown)}")
    rows = np.fromiter((position[v] for v in pairs[:, 0].tolist()), np.int64, len(pairs))
    cols = np.fromiter((position[v] for v in pairs[:, 1].tolist()), np.int64, len(pairs))
    if not directed:
        rows, cols, w = np.concatenate([rows, cols]), np.concatenate([cols, rows]), np.concatenate([w, w])
    adjacency = _max_duplicates(rows, cols, w, len(ids))
    return Graph(adjacency, ids, directed, name=name)


def _max_duplicates(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n: int) -> sp.csr_matrix:
    """CSR matrix where a repeated (row, col) keeps its largest weight (not the sum)."""
    order = np.lexsort((-weights, cols, rows))
    rows, cols, weights = rows[order], cols[order], weights[order]
    first = np.ones(rows.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return sp.csr_matrix((weights[first], (rows[first], cols[first])), shape=(n, n))


def _node_order(pairs: np.ndarray) -> np.ndarray:
    seen = list(dict.fromkeys(pairs.ravel().tolist()))
    if all(v.lstrip("-").isdigit() for v in seen):
        seen.sort(key=int)
    return np.asarray(seen, dtype=str)


def label_matrix(assignments: Sequence[tuple[str, str]], node_ids: np.ndarray, *,
                 name: str = "graph") -> tuple[sp.csr_matrix, np.ndarray]:
    """0/1 ``(n_nodes, n_labels)`` matrix and label names from ``(node id, label)`` pairs; a node may
    have several labels. Labels that name nodes outside ``node_ids`` are an error."""
    position = {node: i for i, node in enumerate(np.asarray(node_ids).tolist())}
    unknown = sorted({node for node, _ in assignments if node not in position})
    if unknown:
        raise InvalidInputError(f"graph {name!r}: labels name {len(unknown)} node(s) that are not in "
                                f"the graph, e.g. {_examples(unknown)}")
    names = sorted({label for _, label in assignments},
                   key=lambda v: (0, int(v), v) if v.lstrip("-").isdigit() else (1, 0, v))
    column = {label: j for j, label in enumerate(names)}
    rows = [position[node] for node, _ in assignments]
    cols = [column[label] for _, label in assignments]
    matrix = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(position), len(names)))
    matrix.data[:] = 1.0  # a pair listed twice is still one label
    return matrix, np.asarray(names, dtype=str)
