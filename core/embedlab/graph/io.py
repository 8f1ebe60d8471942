"""Read graphs from the common file formats: MATLAB ``.mat`` (DeepWalk's ``network``/``group``),
``.npz`` (the gnn-benchmark layout or a ``scipy.sparse.save_npz`` matrix), edge lists and
adjacency lists; node labels from ``node label`` text files.

:func:`load_graph` picks the reader from the file suffix (``.mat``, ``.npz``, ``.adjlist``; anything
else is read as an edge list) unless ``format`` says otherwise. Text formats: one record per line,
fields separated by whitespace, tabs or commas, ``#`` and ``%`` start comments. A first line whose
fields are not all numbers when later lines are (``node label``, ``source target``) is a header and
is skipped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from embedlab.errors import InvalidInputError
from embedlab.graph.graph import Graph, graph_from_edges, label_matrix

FORMATS = ("mat", "npz", "edgelist", "adjlist")
_SPLIT = re.compile(r"[\s,]+")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _records(path: Path) -> list[list[str]]:
    """Non-empty, comment-free lines split into fields, a header line dropped."""
    if not path.is_file():
        raise InvalidInputError(f"graph file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{path}: not UTF-8 text ({error})") from None
    records = []
    for line in text.splitlines():
        line = re.split(r"[#%]", line, maxsplit=1)[0].strip()
        if line:
            records.append(_SPLIT.split(line))
    if len(records) > 1 and not all(map(_NUMBER.match, records[0])) and all(map(_NUMBER.match, records[1])):
        records = records[1:]
    if not records:
        raise InvalidInputError(f"{path}: no records (empty file)")
    return records


def read_edgelist(path: str | Path, *, directed: bool = False, self_loops: str = "error",
                  name: str | None = None) -> Graph:
    """``source target [weight]`` per line."""
    file = Path(path)
    records = _records(file)
    bad = next((i for i, r in enumerate(records) if len(r) not in (2, 3)), None)
    if bad is not None:
        raise InvalidInputError(f"{file}: record {bad + 1} has {len(records[bad])} fields; an edge list "
                                "needs 'source target' or 'source target weight'")
    pairs = [r[:2] for r in records]
    weights = None
    if any(len(r) == 3 for r in records):
        try:
            weights = [float(r[2]) if len(r) == 3 else 1.0 for r in records]
        except ValueError as error:
            raise InvalidInputError(f"{file}: edge weights must be numbers ({error})") from None
    return graph_from_edges(pairs, weights=weights, directed=directed, self_loops=self_loops,
                            name=name or file.stem)


def read_adjlist(path: str | Path, *, directed: bool = False, self_loops: str = "error",
                 name: str | None = None) -> Graph:
    """``node neighbour neighbour ...`` per line (a node alone on its line is isolated)."""
    file = Path(path)
    records = _records(file)
    nodes = list(dict.fromkeys(r[0] for r in records))
    pairs = [(r[0], other) for r in records for other in r[1:]]
    everything = list(dict.fromkeys([*nodes, *(v for _, v in pairs)]))
    if all(v.lstrip("-").isdigit() for v in everything):
        everything.sort(key=int)
    if not pairs:
        raise InvalidInputError(f"{file}: no edges")
    return graph_from_edges(pairs, node_ids=everything, directed=directed, self_loops=self_loops,
                            name=name or file.stem)


def read_mat(path: str | Path, *, adjacency_key: str = "network", labels_key: str | None = "group",
             directed: bool | None = None, self_loops: str = "error", name: str | None = None) -> Graph:
    """A MATLAB file holding a sparse adjacency matrix (and optionally a node-by-label matrix), as
    the DeepWalk/FastRP ``blogcatalog.mat``. Nodes are named ``0..n-1``. ``directed=None`` decides
    from the matrix's symmetry."""
    from scipy.io import loadmat

    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"graph file {file} does not exist")
    try:
        content = loadmat(file)
    except Exception as error:  # scipy raises several types for corrupt files
        raise InvalidInputError(f"{file}: cannot read as a MATLAB file ({error})") from None
    if adjacency_key not in content:
        keys = sorted(k for k in content if not k.startswith("__"))
        raise InvalidInputError(f"{file}: no matrix {adjacency_key!r}; it holds {', '.join(keys)}")
    labels = content.get(labels_key) if labels_key else None
    return _matrix_graph(content[adjacency_key], labels, None, None, None, directed, self_loops,
                         name or file.stem)


def read_npz(path: str | Path, *, directed: bool | None = None, self_loops: str = "error",
             name: str | None = None) -> Graph:
    """The gnn-benchmark ``.npz`` layout (``adj_*``, optional ``attr_*``, ``labels``,
    ``node_names``, ``class_names``) or a plain ``scipy.sparse.save_npz`` adjacency. Read without
    pickle."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"graph file {file} does not exist")
    try:
        with np.load(file, allow_pickle=False) as content:
            arrays = {key: content[key] for key in content.files}
    except Exception as error:
        raise InvalidInputError(f"{file}: cannot read as a pickle-free .npz ({error})") from None
    if "format" in arrays and "shape" in arrays:
        return _matrix_graph(sp.load_npz(file), None, None, None, None, directed, self_loops,
                             name or file.stem)
    missing = [k for k in ("adj_data", "adj_indices", "adj_indptr", "adj_shape") if k not in arrays]
    if missing:
        raise InvalidInputError(f"{file}: neither a scipy sparse matrix nor the gnn-benchmark layout "
                                f"(missing {', '.join(missing)})")
    adjacency = sp.csr_matrix((arrays["adj_data"], arrays["adj_indices"], arrays["adj_indptr"]),
                              shape=tuple(arrays["adj_shape"]))
    features = None
    if "attr_data" in arrays:
        features = sp.csr_matrix((arrays["attr_data"], arrays["attr_indices"], arrays["attr_indptr"]),
                                 shape=tuple(arrays["attr_shape"]))
    labels, label_names = None, None
    if "labels" in arrays:
        classes = np.asarray(arrays["labels"]).astype(np.int64).ravel()
        n_classes = int(classes.max()) + 1
        labels = sp.csr_matrix((np.ones(classes.size), (np.arange(classes.size), classes)),
                               shape=(classes.size, n_classes))
        label_names = arrays.get("class_names")
    return _matrix_graph(adjacency, labels, label_names, arrays.get("node_names"), features, directed,
                         self_loops, name or file.stem)


def _matrix_graph(adjacency: Any, labels: Any, label_names: Any, node_ids: Any, features: Any,
                  directed: bool | None, self_loops: str, name: str) -> Graph:
    matrix = sp.csr_matrix(adjacency, dtype=np.float64)
    if directed is None:
        directed = bool((matrix != matrix.T).nnz)
    if not directed and (matrix != matrix.T).nnz:
        matrix = matrix.maximum(matrix.T)
    loops = int(np.count_nonzero(matrix.diagonal()))
    if loops and self_loops == "error":
        raise InvalidInputError(f"graph {name!r}: {loops} self-loop(s); load with self_loops='drop' "
                                "(or 'keep')")
    if loops and self_loops == "drop":
        matrix = matrix.tolil()
        matrix.setdiag(0)
    if labels is not None:
        labels = sp.csr_matrix(labels, dtype=np.float64)
        labels.data[:] = 1.0
    return Graph(matrix, node_ids, directed, labels,
                 None if label_names is None else np.asarray(label_names, dtype=str), features, name)


def read_labels(path: str | Path, graph: Graph) -> Graph:
    """``graph`` with labels from a ``node label`` file (one pair per line; a node listed on
    several lines has several labels; a first line naming no node is a header). Labels of nodes
    missing from the graph are an error."""
    file = Path(path)
    records = _records(file)
    position = graph.position
    if len(records) > 1 and records[0][0] not in position and records[1][0] in position:
        records = records[1:]  # a header such as "node_id<TAB>club"
    bad = next((i for i, r in enumerate(records) if len(r) < 2), None)
    if bad is not None:
        raise InvalidInputError(f"{file}: record {bad + 1} has no label; write 'node label'")
    pairs = [(r[0], " ".join(r[1:])) for r in records]
    labels, names = label_matrix(pairs, graph.node_ids, name=graph.name)
    return Graph(graph.adjacency, graph.node_ids, graph.directed, labels, names, graph.features, graph.name)


def load_graph(path: str | Path, *, format: str | None = None, labels: str | Path | None = None,
               directed: bool | None = None, self_loops: str = "error", name: str | None = None) -> Graph:
    """Read a graph file (see the module docstring), optionally with a labels file."""
    file = Path(path).expanduser()
    kind = format or {".mat": "mat", ".npz": "npz", ".adjlist": "adjlist"}.get(file.suffix.lower(), "edgelist")
    if kind not in FORMATS:
        raise InvalidInputError(f"unknown graph format {kind!r}; one of {', '.join(FORMATS)}")
    if kind == "mat":
        graph = read_mat(file, directed=directed, self_loops=self_loops, name=name)
    elif kind == "npz":
        graph = read_npz(file, directed=directed, self_loops=self_loops, name=name)
    elif kind == "adjlist":
        graph = read_adjlist(file, directed=bool(directed), self_loops=self_loops, name=name)
    else:
        graph = read_edgelist(file, directed=bool(directed), self_loops=self_loops, name=name)
    return graph if labels is None else read_labels(Path(labels).expanduser(), graph)
