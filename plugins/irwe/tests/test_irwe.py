"""IRWE: anonymous walks and anchor reachability, identity vs position on mirrored graphs and on
the karate club, the inductive setting (nodes held out at training embedded afterwards), errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_irwe import IRWE, AnonymousWalks, anchor_reachability, anonymous_patterns

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError
from embedlab.graph import ClassificationProtocol, Graph, classify_nodes, graph_from_edges, karate_graph

FAST = {"dim": 16, "epochs": 40, "identity_walks": 16, "distribution_walks": 64, "anchors": 8, "batch_size": 34}


def test_anonymous_walk_patterns():
    assert anonymous_patterns(4).tolist() == [[0, 1, 0, 1], [0, 1, 0, 2], [0, 1, 2, 0], [0, 1, 2, 1], [0, 1, 2, 3]]
    walks = AnonymousWalks(4)
    ids = walks.ids(np.array([[5, 7, 5, 9], [1, 2, 3, 4], [3, 1, 3, 1], [8, 9, 7, 9]]))
    assert walks.patterns[ids].tolist() == [[0, 1, 0, 2], [0, 1, 2, 3], [0, 1, 0, 1], [0, 1, 2, 1]]


def test_anchor_reachability_is_the_expected_number_of_visits():
    path = graph_from_edges([("0", "1"), ("1", "2")])
    reach = anchor_reachability(path, np.array([0]), steps=2)
    # from 0: step 1 at 1, step 2 at 0 or 2 (1/2 each): one visit to node 0 expected half a time
    expected_visits = np.array([0.5, 0.0 + 0.5, 0.5])
    np.testing.assert_allclose(reach[:, 0], np.log1p(expected_visits), rtol=1e-6)


def _mirrored(graph: Graph) -> Graph:
    """Two disjoint copies of ``graph``, joined by one edge between their node 0s."""
    n = graph.n_nodes
    adjacency = sp.block_diag([graph.adjacency, graph.adjacency]).tolil()
    adjacency[0, n] = adjacency[n, 0] = 1
    ids = [f"a{v}" for v in graph.node_ids] + [f"b{v}" for v in graph.node_ids]
    return Graph(adjacency.tocsr(), ids)


def test_identity_is_shared_by_mirror_nodes_and_position_tells_the_copies_apart():
    graph = _mirrored(karate_graph())
    encoder = IRWE(**FAST).fit_graph(graph)
    identity, position = encoder.identity_and_position(graph)
    n = 34
    mirror = np.arange(1, n)  # node 0 of each copy has the extra edge

    def mean_distance(x, pairs_a, pairs_b):
        return np.linalg.norm(x[pairs_a] - x[pairs_b], axis=1).mean()

    strangers = np.random.default_rng(0).permutation(mirror)

    def mirror_ratio(x):
        return mean_distance(x, mirror, mirror + n) / mean_distance(x, mirror, strangers + n)

    # identity: a node is closer to its mirror than to a random node of the other copy; position is not
    assert mirror_ratio(identity) < 0.8 and mirror_ratio(identity) < mirror_ratio(position) - 0.1
    # position: the two copies are separable (anchors sit in both, but reach differs by copy)
    copy = np.r_[np.zeros(n), np.ones(n)]
    labels = sp.csr_matrix(np.stack([copy == 0, copy == 1], axis=1).astype(float))
    protocol = ClassificationProtocol(train_ratios=(0.5,), repeats=3)
    assert classify_nodes(position, labels, protocol).mean("Micro-F1", 0.5) > 0.9


def test_position_finds_the_karate_factions_better_than_identity():
    graph = karate_graph()
    identity, position = IRWE(**FAST).fit_graph(graph).identity_and_position(graph)
    protocol = ClassificationProtocol(train_ratios=(0.5,), repeats=5)
    on_position = classify_nodes(position, graph.labels, protocol).mean("Micro-F1", 0.5)
    on_identity = classify_nodes(identity, graph.labels, protocol).mean("Micro-F1", 0.5)
    assert on_position >= 0.8 and on_position > on_identity + 0.15


def test_training_lowers_the_joint_loss():
    encoder = IRWE(**FAST).fit_graph(karate_graph())
    assert np.mean(encoder.losses[-5:]) < 0.5 * np.mean(encoder.losses[:5])


def test_inductive_nodes_held_out_at_training_are_embedded_afterwards():
    full = karate_graph()
    held_out = np.array([full.position[v] for v in ("10", "15", "27")])
    seen = np.setdiff1d(np.arange(34), held_out)
    encoder = IRWE(**FAST, output="position").fit_graph(full.subgraph(seen))
    vectors = encoder.transform(full)  # no retraining
    assert vectors.shape == (34, 16) and np.all(np.isfinite(vectors))
    # each held-out node lands nearer its own neighbours than the average node
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for node in held_out:
        neighbours = full.neighbours(node)
        similarity = unit @ unit[node]
        assert similarity[neighbours].mean() > np.delete(similarity, [node, *neighbours]).mean()


def test_errors():
    with pytest.raises(NotFittedError):
        IRWE(**FAST).transform(karate_graph())
    with pytest.raises(InvalidInputError, match="irwe needs an undirected graph"):
        IRWE(**FAST).fit_graph(graph_from_edges([("a", "b"), ("b", "c")], directed=True))
    encoder = IRWE(**FAST).fit_graph(karate_graph())
    other = graph_from_edges([(str(i), str(i + 1)) for i in range(100, 140)])
    with pytest.raises(InvalidInputError, match="anchor nodes"):
        encoder.transform(other)
    with pytest.raises(ConfigError, match="divisible by heads"):
        embedlab.create("encoder", "irwe", dim=15)
