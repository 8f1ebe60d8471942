"""node2vec / DeepWalk: walk transition probabilities (first and second order), karate sanity
checks, determinism and errors."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_node2vec import DeepWalk, Node2Vec

import embedlab
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.graph import ClassificationProtocol, classify_nodes, graph_from_edges, karate_graph
from embedlab.testing import neighbour_margin

FAST = {"dim": 16, "walks_per_node": 20, "walk_length": 20, "window": 5, "epochs": 5}


@pytest.mark.parametrize("cls", [DeepWalk, Node2Vec])
def test_separates_the_karate_factions(cls):
    graph = karate_graph()
    vectors = cls(**FAST).fit_graph(graph).node_vectors
    result = classify_nodes(vectors, graph.labels, ClassificationProtocol(train_ratios=(0.5,), repeats=5))
    assert result.mean("Micro-F1", 0.5) >= 0.85


def test_seeded_runs_are_identical():
    graph = karate_graph()
    a = Node2Vec(**FAST, seed=3).fit_graph(graph).node_vectors
    b = Node2Vec(**FAST, seed=3).fit_graph(graph).node_vectors
    np.testing.assert_array_equal(a, b)


def test_neighbours_are_closer_than_strangers():
    graph = karate_graph()
    assert neighbour_margin(graph.adjacency, DeepWalk(**FAST).fit_graph(graph).node_vectors) > 0.1


def test_bad_graph_and_parameters():
    with pytest.raises(InvalidInputError, match="deepwalk: graph 'graph' has 1 isolated"):
        DeepWalk(**FAST).fit_graph(graph_from_edges([("a", "b")], node_ids=["a", "b", "c"]))
    with pytest.raises(ConfigError, match="p must be > 0"):
        embedlab.create("encoder", "node2vec", p=0)
    with pytest.raises(ConfigError, match="hierarchical_softmax"):
        embedlab.create("encoder", "node2vec", negative=0)
