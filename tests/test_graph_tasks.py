"""Node retrieval (held-out edges as qrels, exclusions), graph encoders in pipelines, node
classification (DeepWalk protocol) and both tasks through `embedlab run`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError
from embedlab.experiment import load_config
from embedlab.graph import (
    ClassificationProtocol,
    NodeCorpus,
    NodeEncoder,
    classify_nodes,
    graph_from_edges,
    karate_graph,
    node_retrieval,
)
from embedlab.graph.classification import top_k_prediction
from embedlab.pipeline import Pipeline
from embedlab.ranking import Ranking


def _pairs(graph, adjacency):
    coo = sp.triu(adjacency).tocoo()
    return {(graph.node_ids[r], graph.node_ids[c]) for r, c in zip(coo.row, coo.col)}


def test_held_out_edges_are_absent_from_the_training_graph_and_are_the_qrels():
    dataset = node_retrieval(karate_graph(), holdout=0.2, seed=1)
    full, training = dataset.graph, dataset.training_graph
    held = _pairs(full, full.adjacency) - _pairs(full, training.adjacency)
    assert len(held) == round(0.2 * 78) == dataset.metadata["held_out_test_edges"]
    assert _pairs(full, training.adjacency) <= _pairs(full, full.adjacency)
    split = dataset.split("test")
    judged = {(q, d) for q, docs in split.qrels.items() for d in docs}
    assert judged == held | {(b, a) for a, b in held}  # both endpoints are queries
    assert training.isolated().size == 0  # nobody lost their last edge


def test_exclusions_are_the_query_and_its_training_neighbours():
    dataset = node_retrieval(karate_graph(), holdout=0.2, seed=1)
    split = dataset.split("test")
    training = dataset.training_graph
    for query, excluded in split.exclude.items():
        neighbours = training.node_ids[training.neighbours(training.position[query])].tolist()
        assert sorted(excluded) == sorted([query, *neighbours])
        assert not set(excluded) & set(split.qrels[query])


def test_valid_split_is_disjoint_and_excluded_from_test_rankings():
    dataset = node_retrieval(karate_graph(), holdout=0.15, valid=0.15, seed=3)
    test, valid = dataset.split("test"), dataset.split("valid")
    test_pairs = {(q, d) for q, docs in test.qrels.items() for d in docs}
    valid_pairs = {(q, d) for q, docs in valid.qrels.items() for d in docs}
    assert test_pairs and valid_pairs and not test_pairs & valid_pairs
    for query, docs in valid.qrels.items():
        if query in test.exclude:
            assert set(docs) <= set(test.exclude[query])


def test_holdout_is_seeded():
    a = node_retrieval(karate_graph(), seed=5).split("test").qrels
    b = node_retrieval(karate_graph(), seed=5).split("test").qrels
    c = node_retrieval(karate_graph(), seed=6).split("test").qrels
    assert a == b and a != c


@pytest.mark.parametrize("params, message", [
    ({"holdout": 0}, "holdout must be > 0"), ({"holdout": 0.6, "valid": 0.5}, "leaves no training"),
    ({"holdout": 1.5}, "fraction"), ({"max_queries": 1}, "max_queries"),
])
def test_bad_holdout_parameters(params, message):
    with pytest.raises(ConfigError, match=message):
        node_retrieval(karate_graph(), **params)


def test_a_star_cannot_lose_an_edge():
    star = graph_from_edges([("hub", str(i)) for i in range(5)])
    with pytest.raises(InvalidInputError, match="no edge .* can be held out"):
        node_retrieval(star)


def test_cache_context_of_a_graph_encoder_covers_the_training_graph():
    from embedlab.retrievers import fit_context as _fit_context

    encoder = embedlab.create("encoder", "spectral", dim=2)
    a = NodeCorpus.of(graph_from_edges([("1", "2"), ("2", "3")]))
    b = NodeCorpus.of(graph_from_edges([("1", "2"), ("1", "3")]))
    assert a.content_hash == b.content_hash  # same nodes...
    assert _fit_context(encoder, a, None) != _fit_context(encoder, b, None)  # ...other edges


def test_ranking_without_drops_excluded_ids_and_keeps_order():
    ranking = Ranking(["q"], [["a", "b", "c", "d"]], [[4.0, 3.0, 2.0, 1.0]])
    kept = ranking.without({"q": ["a", "c", "zz"]}, k=3)
    assert kept.doc_ids.tolist() == [["b", "d", ""]] and kept.scores[0, :2].tolist() == [3.0, 1.0]


class OracleEncoder(NodeEncoder):
    """Node vectors = rows of the full graph's adjacency: held-out neighbours score 1, others 0."""

    name = "oracle-test"

    def __init__(self, full, **params):
        super().__init__(**params)
        self.full = full

    @property
    def dim(self):
        return self.full.n_nodes

    def embed(self, graph):
        return self.full.adjacency.toarray()


def test_pipeline_fits_graph_encoders_on_the_training_graph_and_excludes_known_edges():
    dataset = node_retrieval(karate_graph(), holdout=0.2, seed=2)
    seen = []

    class Spy(OracleEncoder):
        def embed(self, graph):
            seen.append(graph)
            # queries: full adjacency rows; documents: one-hot rows (so score = A[q, d])
            return np.eye(graph.n_nodes)

        def encode_queries(self, texts):
            return self.full.adjacency.toarray()[self.graph.positions(list(texts))].astype(np.float32)

    pipeline = Pipeline(encoder=Spy(dataset.graph), index=embedlab.create("index", "exact", metric="ip"))
    pipeline.build(dataset.corpus)
    assert seen == [dataset.training_graph]
    split = dataset.split("test")
    ranking = pipeline.search(split.queries, k=5, exclude=split.exclude)
    result = embedlab.evaluate(ranking, split.qrels, ["AP", "R@5"])
    # training neighbours score 1 too but are excluded, so held-out ones come first
    assert result["AP"] == pytest.approx(1.0)
    unfiltered = pipeline.search(split.queries, k=5)
    assert embedlab.evaluate(unfiltered, split.qrels, ["AP"])["AP"] < 0.9


def test_graph_encoder_on_a_text_corpus_is_a_config_error():
    corpus = embedlab.Corpus(["a", "b"], ["x", "y"])
    pipeline = Pipeline(encoder=embedlab.create("encoder", "spectral", dim=2), index=embedlab.create("index", "exact"))
    with pytest.raises(ConfigError, match="embeds the nodes of a graph, but the corpus is text"):
        pipeline.build(corpus)


def test_spectral_separates_the_karate_factions_and_needs_a_fit():
    encoder = embedlab.create("encoder", "spectral", dim=2)
    with pytest.raises(NotFittedError):
        encoder.encode_documents(["1"])
    graph = karate_graph()
    vectors = encoder.fit_graph(graph).encode_documents(graph.node_ids.tolist())
    assert vectors.shape == (34, 2)
    fiedler = vectors[:, 0]
    factions = graph.labels.toarray()[:, 0] == 1
    agreement = np.mean((fiedler > 0) == factions)
    assert max(agreement, 1 - agreement) >= 0.9  # the Fiedler vector splits the club


def test_spectral_refuses_bad_graphs():
    encoder = embedlab.create("encoder", "spectral", dim=2)
    with pytest.raises(InvalidInputError, match="spectral needs an undirected graph"):
        encoder.fit_graph(graph_from_edges([("a", "b"), ("b", "c"), ("c", "d"), ("d", "e")], directed=True))
    with pytest.raises(InvalidInputError, match="spectral: graph 'graph' has 1 isolated"):
        encoder.fit_graph(graph_from_edges([("a", "b"), ("b", "c"), ("c", "d")], node_ids=list("abcde")))


def test_encoding_unknown_nodes_names_them():
    encoder = embedlab.create("encoder", "spectral", dim=2).fit_graph(karate_graph())
    with pytest.raises(InvalidInputError, match="not nodes of the graph, e.g. 99"):
        encoder.encode_queries(["1", "99"])


def test_node_encoder_state_round_trips(tmp_path):
    encoder = embedlab.create("encoder", "spectral", dim=3).fit_graph(karate_graph())
    encoder.save(tmp_path / "spectral")
    loaded = embedlab.load_component(tmp_path / "spectral")
    np.testing.assert_array_equal(loaded.encode_documents(["1", "34"]), encoder.encode_documents(["1", "34"]))


def test_top_k_prediction_uses_each_nodes_label_count():
    scores = np.array([[0.1, 0.9, 0.5], [0.8, 0.2, 0.7]])
    predicted = top_k_prediction(scores, np.array([1, 2]))
    assert predicted.toarray().tolist() == [[0, 1, 0], [1, 0, 1]]


def test_classification_of_informative_vectors_beats_noise():
    graph = karate_graph()
    truth = graph.labels.toarray()[:, :1]
    rng = np.random.default_rng(0)
    informative = np.hstack([truth * 2 - 1, rng.normal(size=(34, 3))])
    protocol = ClassificationProtocol(train_ratios=(0.5,), repeats=3)
    good = classify_nodes(informative, graph.labels, protocol)
    noise = classify_nodes(rng.normal(size=(34, 4)), graph.labels, protocol)
    assert good.mean("Micro-F1", 0.5) == 1.0 and good.mean("Macro-F1", 0.5) == 1.0
    assert noise.mean("Micro-F1", 0.5) < 0.8


def test_classification_chooses_c_on_training_nodes_only():
    graph = karate_graph()
    vectors = embedlab.create("encoder", "spectral", dim=4).fit_graph(graph).node_vectors
    result = classify_nodes(vectors, graph.labels, ClassificationProtocol(train_ratios=(0.5,), repeats=2,
                                                                          C=(0.01, 100.0)))
    assert set(result.chosen_c.ravel()) <= {0.01, 100.0}


EXPERIMENT = """
[dataset]
name = "karate"
holdout = 0.2
{extra_dataset}

[experiment]
{experiment}

[[pipeline]]
name = "spectral2"
encoder = {{ name = "spectral", dim = 2 }}

[[pipeline]]
name = "spectral8"
encoder = {{ name = "spectral", dim = 8 }}
index = {{ name = "exact", metric = "cosine" }}
"""


def _write(tmp_path, experiment, extra_dataset=""):
    path = tmp_path / "graph.toml"
    path.write_text(EXPERIMENT.format(experiment=experiment, extra_dataset=extra_dataset))
    return path


def test_node_retrieval_through_embedlab_run(tmp_path, capsys):
    from embedlab.cli import main

    path = _write(tmp_path, 'metrics = ["nDCG@10", "AP", "R@10"]\nbaseline = "spectral2"')
    assert main(["run", str(path), "--no-cache", "-q", "--output", str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    assert "karate / test" in table and "spectral8" in table
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["dataset"]["metadata"]["task"] == "node-retrieval"
    assert {p["name"] for p in results["pipelines"]} == {"spectral2", "spectral8"}
    run = (tmp_path / "out" / "runs" / "spectral8.trec").read_text().splitlines()
    query, _, doc = run[0].split()[:3]
    assert query != doc  # a node never retrieves itself


def test_node_classification_through_embedlab_run(tmp_path, capsys):
    from embedlab.cli import main

    path = _write(tmp_path, 'task = "node-classification"\ntrain_ratios = [0.3, 0.7]\nrepeats = 3\n'
                            'baseline = "spectral2"')
    assert main(["run", str(path), "-q", "--output", str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    assert "node classification" in table and "Micro-F1 30%" in table
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    spectral2 = next(p for p in results["pipelines"] if p["name"] == "spectral2")
    assert np.mean(spectral2["scores"]["Micro-F1"][1]) >= 0.8  # the Fiedler vector knows the factions
    assert (tmp_path / "out" / "results.csv").read_text().count("\n") == 1 + 2 * 2 * 2


@pytest.mark.parametrize("experiment, message", [
    ('task = "node-clasification"', "must be one of retrieval, node-classification"),
    ('task = "node-classification"\nmetrics = ["nDCG@10"]', "node classification measures are"),
    ('task = "node-classification"\ntrain_ratios = [1.5]', "train_ratios must be fractions"),
    ('train_ratios = [0.5]', "unknown key.*train_ratios.*allowed for task 'retrieval'"),
])
def test_classification_config_errors(tmp_path, experiment, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, experiment))


def test_classification_needs_graph_encoders(tmp_path, monkeypatch):
    from embedlab.experiment.runner import run_classification_experiment

    class TextEncoder:
        name = "text"

    monkeypatch.setattr("embedlab.pipeline.create_component", lambda kind, spec: TextEncoder())
    path = _write(tmp_path, 'task = "node-classification"')
    with pytest.raises(ConfigError, match="does not embed graph nodes"):
        run_classification_experiment(load_config(path), progress=False)
