"""Random walks (embedlab.graph.walks): they follow edges, and first- and second-order steps have
node2vec's transition probabilities."""

from __future__ import annotations

import numpy as np

from embedlab.graph import graph_from_edges, karate_graph
from embedlab.graph.walks import Walker


def test_walks_follow_edges():
    graph = karate_graph()
    walks = Walker(graph.adjacency).walks(np.arange(34), 30, np.random.default_rng(0), p=0.5, q=2.0)
    assert walks.shape == (34, 30) and walks[:, 0].tolist() == list(range(34))
    dense = graph.adjacency.toarray()
    assert all(dense[a, b] for walk in walks for a, b in zip(walk[:-1], walk[1:]))


def test_first_order_steps_are_proportional_to_edge_weights():
    graph = graph_from_edges([("0", "1"), ("0", "2"), ("0", "3")], weights=[1.0, 2.0, 5.0])
    walker = Walker(graph.adjacency)
    steps = walker.step(np.zeros(80_000, dtype=np.int64), np.random.default_rng(1))
    shares = np.bincount(steps, minlength=4)[1:] / steps.size
    np.testing.assert_allclose(shares, [1 / 8, 2 / 8, 5 / 8], atol=0.01)


def test_second_order_steps_follow_node2vecs_biases():
    # t - v, v - x1, v - x2, t - x1: from v (coming from t) node2vec weighs t by 1/p, x1 by 1, x2 by 1/q
    graph = graph_from_edges([("t", "v"), ("v", "x1"), ("v", "x2"), ("t", "x1")])
    t, v, x1, x2 = (graph.position[name] for name in ("t", "v", "x1", "x2"))
    walker = Walker(graph.adjacency)
    rng = np.random.default_rng(2)
    starts = np.full(60_000, t)
    walks = walker.walks(starts, 3, rng, p=0.5, q=2.0)
    through_v = walks[walks[:, 1] == v]
    shares = np.array([np.mean(through_v[:, 2] == node) for node in (t, x1, x2)])
    np.testing.assert_allclose(shares, np.array([2.0, 1.0, 0.5]) / 3.5, atol=0.015)
