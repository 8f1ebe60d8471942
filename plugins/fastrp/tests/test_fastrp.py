"""FastRP: the algorithm against a dense reference formula and the paper's own code path
(scikit-learn's SparseRandomProjection), the karate-club sanity checks, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_fastrp import FastRP, fastrp_embedding, sparse_projection

import embedlab
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.graph import ClassificationProtocol, classify_nodes, graph_from_edges, karate_graph, node_retrieval
from embedlab.pipeline import Pipeline
from embedlab.testing import neighbour_margin


def dense_reference(adjacency, projection, weights, beta, normalization):
    """FastRP written as the paper's formulas on dense matrices: sum_i a_i norm(M^i D^beta R), scaled."""
    a = adjacency.toarray()
    degrees = a.sum(axis=1)
    m = a / degrees[:, None]
    r = np.diag(degrees ** beta) @ (projection.toarray() if sp.issparse(projection) else projection)
    total = np.zeros_like(r)
    for i, weight in enumerate(weights, start=1):
        n_i = np.linalg.matrix_power(m, i) @ r
        if normalization:
            n_i = n_i / np.linalg.norm(n_i, axis=1, keepdims=True)
        total += weight * n_i
    return (total - total.mean(axis=0)) / total.std(axis=0)


@pytest.mark.parametrize("beta, normalization", [(0.0, False), (-0.628, True), (-1.0, False)])
def test_matches_the_dense_formula(beta, normalization):
    graph = karate_graph()
    projection = sparse_projection(34, 16, np.random.default_rng(3), density=0.3)
    ours = fastrp_embedding(graph.adjacency, projection, (1.0, 1.0, 7.81, 45.28), beta,
                            normalization=normalization)
    expected = dense_reference(graph.adjacency, projection, (1.0, 1.0, 7.81, 45.28), beta, normalization)
    np.testing.assert_allclose(ours, expected, rtol=2e-3, atol=2e-3)


def test_matches_the_papers_code_path_given_sklearns_projection():
    from sklearn.preprocessing import normalize, scale
    from sklearn.random_projection import SparseRandomProjection

    graph = karate_graph()
    a = sp.csc_matrix(graph.adjacency)
    degrees = np.asarray(a.sum(axis=1)).ravel()
    m = sp.diags(1.0 / degrees) @ a
    transformer = SparseRandomProjection(n_components=16, random_state=42).fit(m)
    projection = sp.csr_matrix(transformer.components_.T)
    transformer.components_ = transformer.components_ @ sp.diags(degrees ** -0.5)
    current = transformer.transform(m)
    total = 0
    for power, weight in enumerate((0.0, 1.0, 2.0)):
        if power:
            current = m @ current
        total = total + weight * normalize(current, norm="l2", axis=1)
    expected = scale(np.asarray(total.todense() if sp.issparse(total) else total))
    ours = fastrp_embedding(graph.adjacency, projection, (0.0, 1.0, 2.0), -0.5, normalization=True)
    np.testing.assert_allclose(ours, expected, rtol=2e-3, atol=2e-3)


def test_very_sparse_projection_has_the_right_values_and_density():
    n, dim = 10_000, 64
    projection = sparse_projection(n, dim, np.random.default_rng(0))
    density = projection.nnz / (n * dim)
    assert density == pytest.approx(1 / np.sqrt(n), rel=0.05)
    assert np.allclose(np.abs(projection.data), np.sqrt(np.sqrt(n) / dim))
    assert abs(np.mean(np.sign(projection.data))) < 0.05
    # E[R^T R] = (n / dim) I: columns nearly orthogonal, squared norms ~ Binomial(n, density) / sqrt(n)
    gram = (projection.T @ projection).toarray() * dim / n
    assert np.mean(np.diag(gram)) == pytest.approx(1, abs=0.03) and np.allclose(np.diag(gram), 1, atol=0.4)
    assert np.abs(gram - np.diag(np.diag(gram))).max() < 0.15


def test_output_is_standardised_and_seeded():
    graph = karate_graph()
    vectors = FastRP(dim=8, seed=1).fit_graph(graph).node_vectors
    assert vectors.shape == (34, 8) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(vectors.std(axis=0), 1, atol=1e-4)
    np.testing.assert_array_equal(vectors, FastRP(dim=8, seed=1).fit_graph(graph).node_vectors)
    assert not np.allclose(vectors, FastRP(dim=8, seed=2).fit_graph(graph).node_vectors)


def test_separates_the_karate_factions():
    graph = karate_graph()
    vectors = FastRP(dim=16, weights=(0.0, 1.0, 1.0), beta=0.0).fit_graph(graph).node_vectors
    result = classify_nodes(vectors, graph.labels, ClassificationProtocol(train_ratios=(0.5,), repeats=5))
    assert result.mean("Micro-F1", 0.5) >= 0.9
    shuffled = np.random.default_rng(0).permutation(vectors)  # the same vectors on the wrong nodes
    assert classify_nodes(shuffled, graph.labels, ClassificationProtocol(train_ratios=(0.5,), repeats=5)).mean(
        "Micro-F1", 0.5) < 0.75


def test_neighbours_are_closer_than_strangers():
    graph = karate_graph()
    vectors = FastRP(dim=64, weights=(1.0, 1.0), beta=0.0).fit_graph(graph).node_vectors
    assert neighbour_margin(graph.adjacency, vectors) > 0.2
    assert abs(neighbour_margin(graph.adjacency, np.random.default_rng(0).permutation(vectors))) < 0.1


def test_node_retrieval_beats_random_on_held_out_karate_edges():
    dataset = node_retrieval(karate_graph(), holdout=0.2, seed=0)
    pipeline = Pipeline(encoder=FastRP(dim=32, weights=(1.0, 1.0), beta=0.0),
                        index=embedlab.create("index", "exact", metric="cosine"))
    pipeline.build(dataset.corpus)
    split = dataset.split("test")
    ranking = pipeline.search(split.queries, k=33, exclude=split.exclude)
    ap = embedlab.evaluate(ranking, split.qrels, ["AP"])["AP"]
    # a random ranking of the ~28 unseen candidates finds 1-2 relevant ones at AP ~ 0.1
    assert ap > 0.25


@pytest.mark.parametrize("graph, message", [
    (graph_from_edges([("a", "b"), ("b", "c")], directed=True), "fastrp needs an undirected graph"),
    (graph_from_edges([("a", "a"), ("a", "b")], self_loops="keep"), "fastrp: graph 'graph' has 1 self-loop"),
    (graph_from_edges([("a", "b")], node_ids=["a", "b", "c"]), "fastrp: graph 'graph' has 1 isolated node"),
])
def test_bad_graphs_are_refused_by_name(graph, message):
    with pytest.raises(InvalidInputError, match=message):
        FastRP(dim=4).fit_graph(graph)


@pytest.mark.parametrize("params, message", [
    ({"weights": []}, "weights"), ({"weights": [0, 0]}, "not all zero"), ({"projection": "dense"}, "projection"),
    ({"density": 2.0}, "density"), ({"beta": float("nan")}, "beta must be finite"),
])
def test_bad_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        embedlab.create("encoder", "fastrp", **params)


def test_registered_and_described():
    spec = embedlab.registry().spec("encoder", "fastrp")
    assert spec.distribution == "embedlab-fastrp"
    assert "FastRP" in spec.description
