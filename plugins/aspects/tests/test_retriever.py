"""The ``aspects`` retriever: routing by aspect prefix, exact search per space, per-aspect training,
TOML, persistence and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from embedlab_aspects import AspectRetriever

import embedlab
from embedlab.dataset import Queries
from embedlab.errors import ConfigError, InvalidInputError, StateError
from embedlab.metrics import evaluate

ASPECTS = ["job", "city", "hobby"]


def heads(params, **extra):
    return AspectRetriever(aspects=ASPECTS, encoder={"name": "frozen-head", "head": "linear", **params, **extra})


def test_each_query_is_searched_exactly_in_its_aspects_space(params, task):
    encoders = {a: {"name": "hashing", "dim": 32 + 8 * i} for i, a in enumerate(ASPECTS)}
    retriever = AspectRetriever(aspects=ASPECTS, encoders=encoders)
    retriever.build(task.corpus)
    queries = Queries(["q1", "q2", "q3"], ["city: a chef from Oslo", "hobby: chess and Paris", "job: a nurse"])
    ranking = retriever.search(queries, 5)
    for row, (aspect, text) in enumerate([("city", "a chef from Oslo"), ("hobby", "chess and Paris"),
                                          ("job", "a nurse")]):
        encoder = retriever.stage(aspect).encoder
        scores = encoder.encode_documents(list(task.corpus.texts)) @ encoder.encode_queries([text])[0]
        best = np.argsort(-scores, kind="stable")[:5]
        np.testing.assert_allclose(ranking.scores[row], scores[best], rtol=1e-5)
        assert set(ranking.doc_ids[row]) == set(task.corpus.ids[best].tolist())
        forced = retriever.search(Queries(["q"], [f"{aspect}: {text}"]), 5, aspect="job")
        plain = retriever.search(Queries(["q"], [text]), 5, aspect="job")
        np.testing.assert_array_equal(forced.doc_ids, plain.doc_ids)   # the prefix is removed
    assert retriever.vectors(["x"], "hobby").shape == (1, 48)


def test_each_aspect_head_learns_its_own_aspect(params, task):
    """Trained on the task, the city head ranks same-city documents far better than the untrained
    (= frozen model) space does, and the three heads are different models."""
    retriever = heads(params, lr=1e-2, epochs=15)
    retriever.build(task.corpus, task.split("train"))
    untrained = AspectRetriever(aspects=ASPECTS, shared=True, encoder={"name": "frozen-head", **params})
    untrained.build(task.corpus)
    split = task.split("train")
    city = Queries([q for q in split.queries.ids.tolist() if q.endswith("@city")],
                   [t for q, t in zip(split.queries.ids.tolist(), split.queries.texts) if q.endswith("@city")])
    qrels = {q: split.qrels[q] for q in city.ids.tolist()}
    trained = evaluate(retriever.search(city, 20), qrels, ["AP@10"])["AP@10"]
    before = evaluate(untrained.search(city, 20), qrels, ["AP@10"])["AP@10"]
    assert trained > before + 0.1
    records = {a: retriever.stage(a).encoder.training_record for a in ASPECTS}
    pairs = {a: sum(len(split.qrels[q]) for q in split.qrels if q.endswith(f"@{a}")) for a in ASPECTS}
    assert {a: r["examples"] for a, r in records.items()} == pairs        # each head saw its aspect only
    weights = [retriever.stage(a).encoder.module.linear.weight.detach().numpy() for a in ASPECTS]
    assert not np.allclose(weights[0], weights[1]) and not np.allclose(weights[1], weights[2])


def test_a_toml_experiment_runs_aspect_conditioned_search(params, tmp_path):
    encoder = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items() if v is not None)
    (tmp_path / "x.toml").write_text(f"""
[dataset]
name = "aspects-people"
documents = 40
split = "test"
train_split = "train"

[experiment]
metrics = ["AP@10", "nDCG@10"]
baseline = "generic"

[[pipeline]]
name = "generic"
[pipeline.retriever]
name = "aspects"
aspects = ["job", "city", "hobby"]
shared = true
encoder = {{ name = "hashing", dim = 64 }}

[[pipeline]]
name = "heads"
[pipeline.retriever]
name = "aspects"
aspects = ["job", "city", "hobby"]
encoder = {{ name = "frozen-head", head = "linear", epochs = 1, {encoder} }}
""")
    result = embedlab.run_experiment(tmp_path / "x.toml", cache=False, progress=False)
    assert [o.name for o in result.outcomes] == ["generic", "heads"]
    for outcome in result.outcomes:
        assert 0 < outcome.evaluation.aggregates["AP@10"] <= outcome.evaluation.aggregates["nDCG@10"] <= 1


def test_save_and_load_search_alike(params, task, tmp_path):
    retriever = heads(params, epochs=1)
    retriever.build(task.corpus, task.split("train"))
    shared = AspectRetriever(aspects=ASPECTS, shared=True, encoder={"name": "hashing", "dim": 16},
                             default_aspect="city")
    shared.build(task.corpus)
    queries = task.split("test").queries
    for name, built in (("heads", retriever), ("shared", shared)):
        built.save(tmp_path / name)
        loaded = embedlab.load_component(tmp_path / name)
        before, after = built.search(queries, 7), loaded.search(queries, 7)
        np.testing.assert_array_equal(after.doc_ids, before.doc_ids)
        np.testing.assert_allclose(after.scores, before.scores, rtol=1e-6)
    assert loaded.search(Queries(["q"], ["no prefix here"]), 3).k == 3           # default_aspect
    (tmp_path / "heads" / "doc_ids.npy").write_bytes(b"damaged")
    with pytest.raises(StateError, match="doc_ids"):
        embedlab.load_component(tmp_path / "heads")


def test_bad_configs_and_queries_are_refused(params, task):
    with pytest.raises(ConfigError, match="distinct"):
        AspectRetriever(aspects=["a", "a"])
    with pytest.raises(ConfigError, match="letters"):
        AspectRetriever(aspects=["a b"])
    with pytest.raises(ConfigError, match="default_aspect"):
        AspectRetriever(aspects=["a"], default_aspect="b", encoder="hashing")
    with pytest.raises(ConfigError, match="unknown space"):
        AspectRetriever(aspects=["a"], encoders={"b": "hashing"}, encoder="hashing")
    retriever = AspectRetriever(aspects=ASPECTS, encoder="hashing")
    with pytest.raises(InvalidInputError, match="before search"):
        retriever.search(Queries(["q"], ["city: x"]), 3)
    retriever.build(task.corpus)
    with pytest.raises(InvalidInputError, match="names no aspect"):
        retriever.search(Queries(["q"], ["colour: x"]), 3)
    with pytest.raises(InvalidInputError, match="unknown aspect"):
        retriever.search(Queries(["q"], ["city: x"]), 3, aspect="colour")
    with pytest.raises(InvalidInputError, match="no query about aspect 'hobby'"):
        train = task.split("train")
        keep = [q for q in train.queries.ids.tolist() if not q.endswith("@hobby")]
        from embedlab.dataset import Split
        heads(params).build(task.corpus, Split("train", train.queries.select(keep), {q: train.qrels[q] for q in keep}))


def test_the_space_by_aspect_table_and_its_tests(params):
    from embedlab_aspects import people
    from embedlab_aspects.matrix import markdown, run, tests_markdown

    task = people(documents=30, seed=3)
    result = run(task, {**params, "epochs": 1})
    assert list(result["table"]) == ["generic", "control", "head-job", "head-city", "head-hobby"]
    for row in result["table"].values():
        for cell in row.values():
            assert 0 <= cell["AP@10"] <= cell["nDCG@10"] <= 1
    assert len(result["tests"]) == 18 and all(0 <= t["p_ttest_holm"] <= 1 for t in result["tests"])
    assert result["training"]["head-city"]["examples"] == sum(
        len(j) for q, j in task.qrels["train"].items() if q.endswith("@city"))
    assert markdown(result).count("**") >= 6 and tests_markdown(result).count("\n") == 19
