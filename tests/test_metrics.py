"""Measures against trec_eval (pytrec_eval-terrier): parsing, tie-breaking, per-query values, aggregates."""

from __future__ import annotations

import json
import types

import numpy as np
import pytest
import pytrec_eval

import embedlab
from embedlab import _builtin
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.metrics import BUILTIN_METRICS, EvaluationResult, Measure, evaluate, parse_metric
from embedlab.metrics.measures import NDCG, Precision
from embedlab.plugins import PluginHost

CUTOFFS = (1, 3, 5, 10, 20)

#: Our measure -> (trec_eval measure, relevance_level); RR@k is checked on a truncated run instead.
REFERENCE = {
    **{f"nDCG@{k}": (f"ndcg_cut_{k}", 1) for k in CUTOFFS},
    **{f"AP@{k}": (f"map_cut_{k}", 1) for k in CUTOFFS},
    **{f"P@{k}": (f"P_{k}", 1) for k in CUTOFFS},
    **{f"R@{k}": (f"recall_{k}", 1) for k in CUTOFFS},
    **{f"Success@{k}": (f"success_{k}", 1) for k in CUTOFFS},
    **{f"P(rel=2)@{k}": (f"P_{k}", 2) for k in CUTOFFS},
    **{f"R(rel=3)@{k}": (f"recall_{k}", 3) for k in CUTOFFS},
    "nDCG": ("ndcg", 1), "AP": ("map", 1), "RR": ("recip_rank", 1),
    "AP(rel=2)": ("map", 2), "RR(rel=2)": ("recip_rank", 2), "Success(rel=3)@5": ("success_5", 3),
    "P(rel=3)@10": ("P_10", 3), "R@100": ("recall_100", 1),
}
TREC_MEASURES = {"ndcg", "map", "recip_rank", *(f"{m}.{','.join(map(str, (*CUTOFFS, 100)))}"
                                                for m in ("ndcg_cut", "map_cut", "P", "recall", "success"))}


def random_case(rng: np.random.Generator, n_queries: int = 25) -> tuple[dict, dict]:
    """Qrels with grades -1..3 and queries without relevant documents, and a run with many tied
    scores, unjudged documents, queries without qrels, qrels queries missing, and one empty row."""
    docs = [f"d{i}" for i in range(40)] + ["D7", "d7a", "Z", "a"]
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(n_queries):
        qid = f"q{q}"
        judged = rng.choice(docs, size=int(rng.integers(1, 15)), replace=False)
        grades = rng.choice([-1, 0, 0, 1, 1, 2, 3], size=judged.size)
        if q % 7 == 0:
            grades[:] = 0  # judged, but nothing relevant
        if q % 6 != 5:  # q5, q11, ... have no qrels
            qrels[qid] = {str(d): int(g) for d, g in zip(judged, grades)}
        if q % 8 != 3:  # q3, q11, ... are missing from the run
            retrieved = rng.choice(docs, size=int(rng.integers(0, 30)), replace=False)
            scores = rng.integers(0, 6, size=retrieved.size) / 4.0  # few distinct values: many ties
            run[qid] = {str(d): float(s) for d, s in zip(retrieved, scores)}
    return qrels, run


def trec_order(docs: dict[str, float]) -> list[str]:
    """trec_eval's evaluation order: score descending, then document id descending."""
    return [d for d, _ in sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def shuffled_ranking(run: dict[str, dict[str, float]], rng: np.random.Generator) -> embedlab.Ranking:
    """A Ranking whose columns (padding included) are in random order: evaluation must not care."""
    ranking = embedlab.Ranking.from_dict(run)
    perm = np.argsort(rng.random(ranking.doc_ids.shape), axis=1)
    rows = rng.permutation(len(ranking))
    return embedlab.Ranking(ranking.query_ids[rows], np.take_along_axis(ranking.doc_ids[rows], perm, 1),
                            np.take_along_axis(ranking.scores[rows], perm, 1))


def reference_values(qrels: dict, run: dict, metric: str) -> dict[str, float]:
    """trec_eval value of ``metric`` for every qrels query (0 where trec_eval reports none: ``-c``)."""
    if metric.startswith("RR@"):
        k = int(metric[3:])
        run = {q: {d: docs[d] for d in trec_order(docs)[:k]} for q, docs in run.items()}
        measure, level = "recip_rank", 1
    else:
        measure, level = REFERENCE[metric]
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, TREC_MEASURES, relevance_level=level)
    found = evaluator.evaluate(run)
    return {q: found[q][measure] if q in found else 0.0 for q in qrels}


ALL_METRICS = [*REFERENCE, *(f"RR@{k}" for k in CUTOFFS)]


def test_randomized_runs_match_trec_eval_per_query_and_aggregate() -> None:
    rng = np.random.default_rng(20240611)
    for _ in range(30):
        qrels, run = random_case(rng)
        result = evaluate(shuffled_ranking(run, rng), qrels, ALL_METRICS)
        assert result.query_ids.tolist() == sorted(qrels)
        for metric in ALL_METRICS:
            expected = reference_values(qrels, run, metric)
            ours = result.query_values(metric)
            assert ours.keys() == expected.keys()
            np.testing.assert_allclose([ours[q] for q in qrels], [expected[q] for q in qrels],
                                       rtol=0, atol=1e-9, err_msg=metric)
            assert result.aggregates[metric] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)


def test_real_graded_qrels_match_trec_eval(shared_data) -> None:
    from embedlab.trec import read_beir_qrels

    qrels = read_beir_qrels(shared_data / "cranfield" / "beir" / "qrels" / "test.tsv")  # grades 1-4
    rng = np.random.default_rng(7)
    docs = [str(i) for i in range(1, 1401)]
    run = {}
    for qid, judged in list(qrels.items())[:120]:
        found = list(judged)[: int(rng.integers(0, len(judged) + 1))]
        pool = found + list(rng.choice(docs, 60, replace=False))
        run[qid] = {d: float(rng.integers(0, 20)) for d in pool}
    metrics = ["nDCG@10", "nDCG", "AP", "R@100", "P(rel=3)@10", "RR"]
    result = evaluate(embedlab.Ranking.from_dict(run), qrels, metrics)
    for metric in metrics:
        expected = reference_values(qrels, run, metric)
        np.testing.assert_allclose(result.per_query[metric], [expected[q] for q in sorted(qrels)], atol=1e-9)
    assert result.query_ids.size == 225 and np.count_nonzero(result.per_query["RR"]) > 50


def test_ties_are_broken_by_document_id_descending_like_trec_eval() -> None:
    qrels = {"q": {"a": 1, "m": 0}}
    run = {"q": {"a": 1.0, "b": 1.0, "m": 1.0, "z": 0.5}}
    # trec_eval reads the tie as m, b, a: the relevant "a" comes third.
    assert pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(run)["q"]["recip_rank"] == 1 / 3
    assert parse_metric("RR").per_query(embedlab.Ranking.from_dict(run), qrels) == {"q": 1 / 3}
    assert trec_order(run["q"]) == ["m", "b", "a", "z"]


def test_missing_and_nonrelevant_queries_score_zero_and_count_in_the_mean() -> None:
    qrels = {"hit": {"a": 2}, "none-relevant": {"a": 0}, "absent": {"a": 1}}
    ranking = embedlab.Ranking.from_dict({"hit": {"a": 1.0}, "none-relevant": {"a": 1.0},
                                          "no-qrels": {"a": 1.0}})
    result = evaluate(ranking, qrels, ["nDCG@10", "RR"])
    assert result.query_ids.tolist() == ["absent", "hit", "none-relevant"]
    assert result.per_query["nDCG@10"].tolist() == [0.0, 1.0, 0.0]
    assert result.aggregates == {"nDCG@10": pytest.approx(1 / 3), "RR": pytest.approx(1 / 3)}


def test_negative_grades_gain_nothing_in_ndcg() -> None:
    qrels = {"q": {"bad": -1, "good": 2}}
    run = {"q": {"bad": 2.0, "good": 1.0}}
    expected = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg"}).evaluate(run)["q"]["ndcg"]
    ours = parse_metric("nDCG").per_query(embedlab.Ranking.from_dict(run), qrels)["q"]
    assert ours == pytest.approx(expected)
    assert expected == pytest.approx(1 / np.log2(3))


@pytest.mark.parametrize("text", ["nDCG@10", "RR", "RR@10", "R@100", "P@5", "AP", "AP@1000", "Success@1",
                                  "P(rel=2)@10", "AP(rel=3)", "RR(rel=2)@10", "Success(rel=2)@5"])
def test_canonical_strings_round_trip(text: str) -> None:
    metric = parse_metric(text)
    assert str(metric) == text
    assert parse_metric(str(metric)) == metric and hash(parse_metric(text)) == hash(metric)


def test_equivalent_spellings_are_equal_and_canonicalised() -> None:
    assert str(parse_metric(" P ( rel = 1 ) @ 10 ")) == "P@10"
    assert parse_metric("P(cutoff=10)") == parse_metric("P@10") == Precision(cutoff=10)
    assert parse_metric("nDCG@10") == embedlab.create("metric", "nDCG", cutoff=10) == NDCG(cutoff=10)
    assert parse_metric("nDCG@10") != parse_metric("nDCG@5") != parse_metric("nDCG")
    assert parse_metric("P@10") != parse_metric("R@10")
    from_numpy = embedlab.create("metric", "P", cutoff=np.int64(5), rel=np.int32(2))
    assert from_numpy == parse_metric("P(rel=2)@5") and str(from_numpy) == "P(rel=2)@5"
    assert len({parse_metric("AP"), parse_metric("AP(rel=1)"), parse_metric("AP@10")}) == 2


@pytest.mark.parametrize("text, message", [
    ("nDCG@", "cannot parse metric"), ("@10", "cannot parse metric"), ("P(rel=2@10", "cannot parse metric"),
    ("ndcg@10", "Did you mean nDCG"), ("MAP", "Known measures: AP, P, R, RR, "),
    ("P", "needs a cutoff"), ("R(rel=2)", "needs a cutoff"), ("nDCG@0", "cutoff must be an integer >= 1"),
    ("P(rel=0)@5", "rel must be an integer >= 1"), ("P(rel=1.5)@5", "rel must be an integer"),
    ("nDCG(rel=2)@10", "unknown parameter(s) rel"), ("P(rel)@5", "not written key=value"),
    ("P(rel=x)@5", "is not a number"), ("P(cutoff=5)@5", "give the cutoff once"),
    ("P(rel=2,rel=3)@5", "given twice"),
])
def test_bad_metric_strings_raise_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_metric(text)


def test_builtin_metrics_are_registered_components() -> None:
    assert set(BUILTIN_METRICS) <= set(embedlab.registry().names("metric"))
    assert {"nDCG", "RR", "R", "P", "AP", "Success"} == set(BUILTIN_METRICS)
    metric = parse_metric("P(rel=2)@10")
    assert embedlab.describe(metric)["config"] == {"cutoff": 10, "rel": 2}
    assert isinstance(metric, embedlab.Component) and metric.kind == "metric"


class Hits(Measure):
    """Number of relevant documents in the top k (a plugin measure that is not a mean of a built-in)."""

    name = "Hits"
    cutoff_required = True

    def compute(self, judged):
        return judged.relevant(1, self.cutoff).sum(axis=1).astype(float)


class MedianRR:
    """A protocol-only metric: per_query plus a non-mean aggregate."""

    def __str__(self) -> str:
        return "MedianRR"

    def per_query(self, ranking, qrels):
        return parse_metric("RR").per_query(ranking, qrels)

    def aggregate(self, values):
        return float(np.median(list(values.values())))


def test_plugins_add_measures_through_the_registry() -> None:
    plugin = types.ModuleType("embedlab_hits")
    plugin.EMBEDLAB_API_VERSION = "1.0"

    @embedlab.hookimpl
    def embedlab_register(registry):
        registry.add("metric", "Hits", Hits)

    plugin.embedlab_register = embedlab_register
    host = PluginHost()
    host.load_plugin(_builtin, "embedlab")
    assert host.load_plugin(plugin, "hits").status == "loaded"
    metric = parse_metric("Hits@2", registry=host.registry)
    assert isinstance(metric, Hits) and str(metric) == "Hits@2"
    ranking = embedlab.Ranking.from_dict({"q": {"a": 3.0, "b": 2.0, "c": 1.0}})
    result = evaluate(ranking, {"q": {"a": 1, "b": 1, "c": 1}}, ["Hits@2", "nDCG@2"], registry=host.registry)
    assert result.aggregates == {"Hits@2": 2.0, "nDCG@2": 1.0}
    with pytest.raises(ConfigError, match="unknown measure 'Hits'"):
        parse_metric("Hits@2")


def test_protocol_only_metrics_use_their_own_aggregate() -> None:
    ranking = embedlab.Ranking.from_dict({"q1": {"a": 1.0}, "q2": {"x": 2.0, "b": 1.0}, "q3": {"c": 1.0}})
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"z": 1}}
    result = evaluate(ranking, qrels, [MedianRR(), "RR"])
    assert result.metrics == ("MedianRR", "RR")
    assert result.per_query["MedianRR"].tolist() == [1.0, 0.5, 0.0]
    assert result.aggregates == {"MedianRR": 0.5, "RR": 0.5}


def test_metric_protocol_per_query_and_aggregate() -> None:
    metric = parse_metric("AP")
    ranking = embedlab.Ranking.from_dict({"q1": {"a": 1.0}})
    values = metric.per_query(ranking, {"q1": {"a": 1}, "q2": {"a": 1}})
    assert values == {"q1": 1.0, "q2": 0.0}
    assert metric.aggregate(values) == 0.5
    assert np.isnan(metric.aggregate({}))


def test_evaluation_result_shape_and_json() -> None:
    ranking = embedlab.Ranking.from_dict({"b": {"x": 1.0}, "a": {"y": 1.0, "x": 0.5}})
    result = evaluate(ranking, {"b": {"x": 1}, "a": {"x": 1}}, ["nDCG@10", "RR", parse_metric("nDCG@10")])
    assert isinstance(result, EvaluationResult)
    assert result.metrics == ("nDCG@10", "RR")
    assert result.query_ids.tolist() == ["a", "b"]
    assert result.per_query["RR"].dtype == np.float64 and result.per_query["RR"].tolist() == [0.5, 1.0]
    data = json.loads(json.dumps(result.to_json()))
    assert data["aggregates"] == {"nDCG@10": result["nDCG@10"], "RR": 0.75}
    assert data["per_query"]["RR"] == {"a": 0.5, "b": 1.0} and data["num_queries"] == 2
    assert "per_query" not in result.to_json(per_query=False)
    assert "RR       0.7500" in str(result)
    assert evaluate(ranking, {"a": {"x": 1}}, "RR").aggregates == {"RR": 0.5}


@pytest.mark.parametrize("ranking, qrels, message", [
    (embedlab.Ranking(["q"], [["a", "a"]], [[1.0, 0.5]]), {"q": {"a": 1}},
     "query 'q' retrieves document 'a' more than once"),
    (embedlab.Ranking(["q"], [["a", "b"]], [[np.nan, 0.5]]), {"q": {"a": 1}}, "NaN"),
    (embedlab.Ranking(["q", "q"], [["a"], ["b"]], [[1.0], [0.5]]), {"q": {"a": 1}}, "duplicate query"),
    (embedlab.Ranking(["q"], [["a"]], [[1.0]]), {"q": {"a": 1.5}}, "grades must be integers, got 1.5"),
    (embedlab.Ranking(["q"], [["a"]], [[1.0]]), {"q": {"a": "1"}}, "grades must be integers, got '1'"),
    (embedlab.Ranking(["q"], [["a"]], [[1.0]]), {}, "no query to evaluate"),
])
def test_invalid_inputs_are_rejected(ranking, qrels, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        evaluate(ranking, qrels, ["AP"])


def test_non_metrics_are_rejected() -> None:
    ranking = embedlab.Ranking.from_dict({"q": {"a": 1.0}})
    with pytest.raises(ConfigError, match="no metrics"):
        evaluate(ranking, {"q": {"a": 1}}, [])
    with pytest.raises(ConfigError, match="neither a metric string"):
        evaluate(ranking, {"q": {"a": 1}}, [3])


def test_rankings_without_documents_score_zero() -> None:
    qrels = {"q": {"a": 1}, "r": {}}
    metrics = ["RR", "AP", "nDCG", "nDCG@5", "P@3", "R@3", "Success@2"]
    for ranking in (embedlab.Ranking.from_dict({"q": {}}), embedlab.Ranking.from_dict({})):
        result = evaluate(ranking, qrels, metrics)
        assert result.query_ids.tolist() == ["q", "r"]
        assert all(result.per_query[m].tolist() == [0.0, 0.0] for m in metrics)
