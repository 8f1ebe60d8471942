"""Graphs as data: the Graph class, its checks, the file readers and the registered datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import embedlab
from embedlab.errors import InvalidInputError
from embedlab.graph import Graph, graph_from_edges, karate_graph, load_graph, read_labels
from embedlab.graph.data import locate

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_shared = pytest.mark.skipif(not (SHARED / "karate").is_dir(), reason="../shared/data is absent")


def test_karate_is_zacharys_club():
    graph = karate_graph()
    assert (graph.n_nodes, graph.n_edges, graph.directed) == (34, 78, False)
    assert graph.degrees[graph.position["34"]] == 17 and graph.degrees[graph.position["1"]] == 16
    factions = graph.labels.toarray()
    assert factions.sum(axis=0).tolist() == [17, 17] and graph.label_names.tolist() == ["Mr. Hi", "Officer"]


@needs_shared
def test_builtin_karate_equals_the_shared_files():
    shared = read_labels(SHARED / "karate" / "karate_club_labels.tsv",
                         load_graph(SHARED / "karate" / "karate.adjlist"))
    builtin = karate_graph()
    assert shared.node_ids.tolist() == builtin.node_ids.tolist()
    assert (shared.adjacency != builtin.adjacency).nnz == 0
    assert (shared.labels != builtin.labels).nnz == 0


def test_edges_in_either_direction_make_one_undirected_edge():
    graph = graph_from_edges([("a", "b"), ("b", "a"), ("b", "c")])
    assert graph.n_edges == 2 and graph.adjacency.toarray().tolist() == [[0, 1, 0], [1, 0, 1], [0, 1, 0]]
    assert graph.edges().tolist() == [[0, 1], [1, 2]]


def test_integer_ids_are_ordered_numerically():
    graph = graph_from_edges([("10", "2"), ("2", "1")])
    assert graph.node_ids.tolist() == ["1", "2", "10"]


def test_self_loops_are_refused_unless_dropped_or_kept():
    with pytest.raises(InvalidInputError, match="1 self-loop.*self_loops='drop'"):
        graph_from_edges([("a", "a"), ("a", "b")])
    assert graph_from_edges([("a", "a"), ("a", "b")], self_loops="drop").n_self_loops == 0
    kept = graph_from_edges([("a", "a"), ("a", "b")], self_loops="keep")
    assert kept.n_self_loops == 1
    with pytest.raises(InvalidInputError, match="fastrp: graph 'graph' has 1 self-loop"):
        kept.require("fastrp", no_self_loops=True)


def test_isolated_nodes_are_named_by_require():
    graph = graph_from_edges([("a", "b")], node_ids=["a", "b", "lonely"])
    with pytest.raises(InvalidInputError, match="1 isolated node.*lonely"):
        graph.require("fastrp", no_isolated=True)


def test_directed_input_where_undirected_is_required():
    graph = graph_from_edges([("a", "b"), ("b", "c")], directed=True)
    with pytest.raises(InvalidInputError, match="fastrp needs an undirected graph.*to_undirected"):
        graph.require("fastrp", undirected=True)
    assert graph.to_undirected().n_edges == 2


def test_asymmetric_matrix_must_be_declared_directed():
    with pytest.raises(InvalidInputError, match="not symmetric.*directed=True"):
        Graph(sp.csr_matrix(np.array([[0, 1], [0, 0]])))


@pytest.mark.parametrize("matrix, message", [
    (np.array([[0, -1], [-1, 0]]), "negative"),
    (np.array([[0, np.nan], [np.nan, 0]]), "NaN"),
    (np.zeros((2, 3)), "square"),
])
def test_bad_weights_and_shapes(matrix, message):
    with pytest.raises(InvalidInputError, match=message):
        Graph(matrix)


def test_duplicate_node_ids():
    with pytest.raises(InvalidInputError, match="duplicate node ids"):
        Graph(np.zeros((2, 2)), ["x", "x"])


def test_labels_for_unknown_nodes_are_an_error(tmp_path):
    edges = tmp_path / "g.edgelist"
    edges.write_text("1 2\n2 3\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("node label\n1 a\n2 b\n9 a\n")
    with pytest.raises(InvalidInputError, match="labels name 1 node.*9"):
        load_graph(edges, labels=labels)


def test_edgelist_reader_handles_headers_comments_weights_and_multi_labels(tmp_path):
    edges = tmp_path / "g.csv"
    edges.write_text("source,target,weight\n# a comment\n1,2,0.5\n2,3,2\n")
    labels = tmp_path / "labels.txt"
    labels.write_text("1 x\n1 y\n3 y\n")
    graph = load_graph(edges, labels=labels)
    assert graph.adjacency[0, 1] == 0.5 and graph.adjacency[2, 1] == 2
    assert graph.labels.toarray().tolist() == [[1, 1], [0, 0], [0, 1]]


def test_malformed_edge_list(tmp_path):
    edges = tmp_path / "bad.edgelist"
    edges.write_text("1 2\n1 2 3 4\n")
    with pytest.raises(InvalidInputError, match="record 2 has 4 fields"):
        load_graph(edges)


def test_npz_reader_is_pickle_free_and_reads_a_scipy_matrix(tmp_path):
    matrix = sp.csr_matrix(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], dtype=float))
    sp.save_npz(tmp_path / "g.npz", matrix)
    graph = load_graph(tmp_path / "g.npz")
    assert graph.n_edges == 2 and not graph.directed


def test_mat_reader_reports_missing_keys(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "g.mat", {"adj": sp.csr_matrix(np.eye(2)[::-1])})
    with pytest.raises(InvalidInputError, match="no matrix 'network'; it holds adj"):
        load_graph(tmp_path / "g.mat")


def test_content_hash_follows_the_edges():
    a = graph_from_edges([("1", "2"), ("2", "3")])
    b = graph_from_edges([("1", "2"), ("1", "3")])
    assert a.content_hash != b.content_hash
    assert a.content_hash == graph_from_edges([("2", "1"), ("3", "2")]).content_hash


def test_graph_datasets_are_registered():
    names = embedlab.registry().names("dataset")
    for name in ("karate", "blogcatalog", "cora", "citeseer", "airports-usa", "wiki-graph", "graph"):
        assert name in names


def test_missing_shared_file_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr("embedlab.graph.data.data_roots", lambda: [tmp_path])
    with pytest.raises(InvalidInputError, match="not found.*EMBEDLAB_GRAPH_DATA"):
        locate("blogcatalog/blogcatalog.mat")


@needs_shared
@pytest.mark.parametrize("name, nodes, edges, labels", [
    ("blogcatalog", 10312, 333983, 39),
    ("cora", 2708, 5278, 7),
    ("airports-brazil", 131, 1003, 4),
    ("airports-usa", 1190, 13599, 4),
    ("wiki-graph", 2363, 11596, 17),
])
def test_shared_graphs_load_with_their_documented_counts(name, nodes, edges, labels):
    graph = embedlab.load_dataset(name).graph
    assert (graph.n_nodes, graph.n_edges, graph.labels.shape[1]) == (nodes, edges, labels)
    assert not graph.directed and graph.n_self_loops == 0
