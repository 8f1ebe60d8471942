"""``embedlab evaluate`` on files in tmp_path, compared with pytrec_eval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pytrec_eval

import embedlab
from embedlab.cli import main
from embedlab.trec import write_qrels, write_run

#: Our measure -> (trec_eval measure, relevance level).
METRICS = {"nDCG@10": ("ndcg_cut_10", 1), "AP": ("map", 1), "P(rel=2)@5": ("P_5", 2), "RR": ("recip_rank", 1),
           "R@20": ("recall_20", 1)}


def reference_values(qrels: dict, run: dict, metric: str) -> dict[str, float]:
    """pytrec_eval's value per qrels query; 0 for queries it does not report (absent from the run)."""
    measure, level = METRICS[metric]
    found = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "map", "P.5", "recip_rank", "recall.20"},
                                           relevance_level=level).evaluate(run)
    return {q: found[q][measure] if q in found else 0.0 for q in qrels}


@pytest.fixture
def files(tmp_path):
    """Graded qrels (some queries without relevant documents) and a run with ties, unjudged documents,
    queries without qrels and qrels queries it lacks."""
    rng = np.random.default_rng(5)
    docs = np.asarray([f"d{i}" for i in range(30)])
    qrels, run = {}, {}
    for q in range(30):
        grades = rng.integers(0, 4, 8) if q % 5 else np.zeros(8, dtype=int)
        if q % 9:
            qrels[f"q{q}"] = {str(d): int(g) for d, g in zip(rng.choice(docs, 8, replace=False), grades)}
        if q % 7:
            run[f"q{q}"] = {str(d): float(rng.integers(0, 4)) for d in rng.choice(docs, 15, replace=False)}
    write_qrels(qrels, tmp_path / "qrels.txt")
    write_run(embedlab.Ranking.from_dict(run), tmp_path / "run.txt")
    return tmp_path / "qrels.txt", tmp_path / "run.txt", qrels, run


def _flags() -> list[str]:
    return [arg for m in METRICS for arg in ("-m", m)]


def test_trec_eval_style_output_matches_pytrec_eval(files, capsys) -> None:
    qrels_path, run_path, qrels, run = files
    assert main(["evaluate", str(qrels_path), str(run_path), *_flags(), "--per-query"]) == 0
    captured = capsys.readouterr()
    rows = [line.split("\t") for line in captured.out.splitlines()]
    assert all(len(row) == 3 for row in rows) and len(rows) == len(METRICS) * (len(qrels) + 1)
    values = {(name.strip(), qid): float(value) for name, qid, value in rows}
    for metric in METRICS:
        expected = reference_values(qrels, run, metric)
        for qid, value in expected.items():
            assert values[metric, qid] == pytest.approx(value, abs=5e-5)
        assert values[metric, "all"] == pytest.approx(np.mean(list(expected.values())), abs=5e-5)
    assert [row[1] for row in rows[-len(METRICS):]] == ["all"] * len(METRICS)
    assert "absent from the run score 0" in captured.err


def test_json_output_has_full_precision(files, capsys) -> None:
    qrels_path, run_path, qrels, run = files
    assert main(["evaluate", str(qrels_path), str(run_path), *_flags(), "--json", "--per-query"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["num_queries"] == len(qrels)
    for metric in METRICS:
        expected = reference_values(qrels, run, metric)
        assert data["per_query"][metric] == pytest.approx(expected, abs=1e-9)
        assert data["aggregates"][metric] == pytest.approx(np.mean(list(expected.values())), abs=1e-9)


def test_aggregates_only_and_default_metrics(files, capsys) -> None:
    qrels_path, run_path, _, _ = files
    assert main(["evaluate", str(qrels_path), str(run_path)]) == 0
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert [(name.strip(), qid) for name, qid, _ in rows] == [
        ("nDCG@10", "all"), ("RR@10", "all"), ("R@100", "all"), ("AP", "all")]


def test_beir_qrels(tmp_path, capsys) -> None:
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ta\t1\nq2\tb\t1\n")
    write_run(embedlab.Ranking.from_dict({"q1": {"x": 2.0, "a": 1.0}, "q2": {"b": 1.0}}), tmp_path / "run")
    assert main(["evaluate", str(tmp_path / "qrels.tsv"), str(tmp_path / "run"), "-m", "RR", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"num_queries": 2, "aggregates": {"RR": 0.75}}


@pytest.mark.parametrize("run_text, metric, message", [
    ("q1 Q0 a 1 1.0\n", "AP", "run.txt:1: expected 6 fields"),
    ("q1 Q0 a 1 1.0 t\n", "MAP", "Known measures: AP, P, R, RR, "),
])
def test_errors_are_reported_without_traceback(tmp_path, capsys, run_text, metric, message) -> None:
    (tmp_path / "qrels.txt").write_text("q1 0 a 1\n")
    (tmp_path / "run.txt").write_text(run_text)
    assert main(["evaluate", str(tmp_path / "qrels.txt"), str(tmp_path / "run.txt"), "-m", metric]) == 1
    err = capsys.readouterr().err
    assert err.startswith("embedlab evaluate: error:") and message in err and "Traceback" not in err
