"""RESTORE: the oracle reaches mAP = 1, random vectors score about |N_k|/n, AP agrees with
trec_eval's through `embedlab run`, and the semantic test separates informative from random vectors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_restore import evaluate_reconstruction, khop_reach, label_reconstruction, restore_dataset

import embedlab
from embedlab.errors import InvalidInputError
from embedlab.graph import graph_from_edges, karate_graph
from embedlab.pipeline import Pipeline


def test_khop_reach_on_a_path():
    path = graph_from_edges([("0", "1"), ("1", "2"), ("2", "3"), ("3", "4")])
    assert khop_reach(path, 1).toarray()[0].tolist() == [0, 1, 0, 0, 0]
    assert khop_reach(path, 2).toarray()[2].tolist() == [1, 1, 0, 1, 1]
    assert khop_reach(path, 3, np.array([0])).toarray().tolist() == [[0, 1, 1, 1, 0]]


def test_adjacency_rows_reconstruct_one_hop_perfectly():
    graph = karate_graph()
    adjacency = graph.adjacency
    result = evaluate_reconstruction(graph, adjacency, documents=sp.identity(34, format="csr"), hops=(1,))[1]
    assert result.map == pytest.approx(1.0)
    assert result.precision[0] == 1.0  # the best-scored pair is an edge


def test_reach_rows_reconstruct_k_hops_perfectly():
    graph = karate_graph()
    for k in (2, 3):
        oracle = khop_reach(graph, k)
        result = evaluate_reconstruction(graph, oracle, documents=sp.identity(34, format="csr"), hops=(k,))[k]
        assert result.map == pytest.approx(1.0)


def test_random_vectors_score_about_the_share_of_reachable_nodes():
    graph = karate_graph()
    maps = {1: [], 2: []}
    for seed in range(20):
        vectors = np.random.default_rng(seed).standard_normal((34, 16))
        for k, result in evaluate_reconstruction(graph, vectors, hops=(1, 2)).items():
            maps[k].append(result.map)
    for k in (1, 2):
        reach = evaluate_reconstruction(graph, np.ones((34, 1)), hops=(k,))[k].mean_reach
        # a random ranking's AP is |N_k|/(n-1) plus a small-sample excess (1/|N_k| of the first hit)
        assert reach < np.mean(maps[k]) < reach + 0.12
    assert np.mean(maps[2]) > np.mean(maps[1]) + 0.2  # more of the club lies within 2 hops


def test_structure_aware_vectors_beat_random():
    graph = karate_graph()
    spectral = embedlab.create("encoder", "spectral", dim=8).fit_graph(graph).node_vectors
    ours = evaluate_reconstruction(graph, spectral, hops=(1,), similarity="cosine")
    random = evaluate_reconstruction(graph, np.random.default_rng(1).standard_normal((34, 8)), hops=(1,))
    assert ours[1].map > random[1].map + 0.1


def test_map_equals_trec_eval_ap_through_embedlab_run(tmp_path):
    dataset = restore_dataset("karate", hops=2)
    vectors = np.random.default_rng(3).standard_normal((34, 6)).astype(np.float32)

    class Fixed(embedlab.graph.NodeEncoder):
        name = "fixed-test"

        @property
        def dim(self):
            return 6

        def embed(self, graph):
            return vectors

    pipeline = Pipeline(encoder=Fixed(), index=embedlab.create("index", "exact"))
    pipeline.build(dataset.corpus)
    split = dataset.split("test")
    ranking = pipeline.search(split.queries, k=34, exclude=split.exclude)
    trec_ap = embedlab.evaluate(ranking, split.qrels, ["AP"])["AP"]
    assert trec_ap == pytest.approx(evaluate_reconstruction(dataset.graph, vectors, hops=(2,))[2].map, abs=1e-6)


def test_restore_dataset_through_embedlab_run(tmp_path, capsys):
    from embedlab.cli import main

    config = tmp_path / "restore.toml"
    config.write_text('[dataset]\nname = "restore"\ngraph = "karate"\nhops = 2\n\n[experiment]\nmetrics = ["AP"]\n'
                      'k = 34\n\n[[pipeline]]\nname = "spectral"\nencoder = { name = "spectral", dim = 8 }\n')
    assert main(["run", str(config), "--no-cache", "-q"]) == 0
    assert "karate/restore-2hop / test: 34 documents, 34 queries" in capsys.readouterr().out


def test_semantic_test_on_labels():
    graph = karate_graph()
    factions = graph.labels.toarray()[:, :1] * 2 - 1.0
    informative = np.hstack([factions, 0.1 * np.random.default_rng(0).standard_normal((34, 3))])
    good = label_reconstruction(graph, informative)
    noise = label_reconstruction(graph, np.random.default_rng(1).standard_normal((34, 4)))
    assert good["label_mAP"] > 0.95 and good["distance_ratio"] < 0.5
    assert noise["label_mAP"] < 0.7 and noise["distance_ratio"] > 0.8


def test_errors():
    graph = karate_graph()
    with pytest.raises(InvalidInputError, match="34 nodes"):
        evaluate_reconstruction(graph, np.zeros((33, 4)))
    with pytest.raises(InvalidInputError, match="NaN"):
        evaluate_reconstruction(graph, np.full((34, 4), np.nan))
    with pytest.raises(InvalidInputError, match="hops must be an integer >= 1"):
        khop_reach(graph, 0)
    with pytest.raises(InvalidInputError, match="similarity"):
        evaluate_reconstruction(graph, np.zeros((34, 4)), similarity="jaccard")
    with pytest.raises(InvalidInputError, match="no labels"):
        label_reconstruction(graph_from_edges([("a", "b"), ("b", "c")]), np.zeros((3, 2)))
