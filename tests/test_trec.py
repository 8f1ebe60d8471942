"""TREC run/qrels and BEIR qrels files: round trips, trec_eval's order, pytrec_eval's parsers, errors."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import pytrec_eval

import embedlab
from embedlab.errors import InvalidInputError
from embedlab.trec import load_qrels, read_beir_qrels, read_qrels, read_run, write_qrels, write_run


def test_run_round_trip_keeps_scores_exactly(tmp_path) -> None:
    scores = np.array([[0.1 + 0.2, 1 / 3, -np.inf], [1e-300, -2.5, 7.0]])
    ranking = embedlab.Ranking(["q2", "q1"], [["d1", "d2", ""], ["x", "y", "z"]], scores)
    path = tmp_path / "run.txt"
    write_run(ranking, path, tag="bm25")
    lines = path.read_text().splitlines()
    assert lines[0] == f"q2 Q0 d1 1 {0.1 + 0.2!r} bm25" and len(lines) == 5
    back = read_run(path)
    assert back.query_ids.tolist() == ["q2", "q1"]
    assert back.to_dict() == ranking.to_dict()
    assert back.doc_ids[0].tolist() == ["d2", "d1", ""]  # trec_eval order: 1/3 > 0.30000000000000004
    assert back.scores[0, 2] == -np.inf


def test_read_run_uses_trec_eval_order_and_ignores_the_rank_column(tmp_path) -> None:
    path = tmp_path / "run.txt"
    path.write_text("q1 Q0 a 1 1.0 t\n\nq1 Q0 c 2 1.0 t\nq1 Q0 b 3 2.0 t\nq0 Q0 a 9 0.5 t\n")
    ranking = read_run(path)
    assert ranking.query_ids.tolist() == ["q1", "q0"]
    assert ranking.doc_ids.tolist() == [["b", "c", "a"], ["a", "", ""]]
    assert ranking.to_dict() == pytrec_eval.parse_run(line for line in path.read_text().splitlines() if line)


def test_qrels_round_trip_and_pytrec_eval_parser(tmp_path) -> None:
    qrels = {"q1": {"a": 2, "b": 0, "c": -1}, "10": {"a": 1}}
    path = tmp_path / "qrels.txt"
    write_qrels(qrels, path)
    assert path.read_text().splitlines()[0] == "q1 0 a 2"
    assert read_qrels(path) == qrels == pytrec_eval.parse_qrel(path.read_text().splitlines())
    assert load_qrels(path) == qrels


def test_gzip_files(tmp_path) -> None:
    ranking = embedlab.Ranking.from_dict({"q": {"a": 1.5, "b": 0.5}})
    write_run(ranking, tmp_path / "run.gz")
    write_qrels({"q": {"a": 1}}, tmp_path / "qrels.gz")
    assert read_run(tmp_path / "run.gz").to_dict() == ranking.to_dict()
    assert read_qrels(tmp_path / "qrels.gz") == {"q": {"a": 1}}


def test_beir_qrels_of_real_datasets(shared_data) -> None:
    path = shared_data / "scifact" / "beir" / "qrels" / "test.tsv"
    qrels = read_beir_qrels(path)
    assert len(qrels) == 300 and sum(map(len, qrels.values())) == 339  # counts in scifact/SOURCE.md
    assert load_qrels(path) == qrels
    graded = read_beir_qrels(shared_data / "cranfield" / "beir" / "qrels" / "test.tsv")
    with open(shared_data / "cranfield" / "beir" / "qrels" / "test.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert sum(map(len, graded.values())) == len(rows) == 1612
    assert all(graded[r["query-id"]][r["corpus-id"]] == int(r["score"]) for r in rows)


@pytest.mark.parametrize("reader, text, message", [
    (read_run, "q1 Q0 a 1 1.0 t\nq1 Q0 b 2 1.0\n", r"run\.txt:2: expected 6 fields"),
    (read_run, "q1 Q0 a 1 high t\n", r"run\.txt:1: score 'high' is not a number"),
    (read_run, "q1 Q0 a 1 nan t\n", r"run\.txt:1: score 'nan' is not a number"),
    (read_run, "q1 Q0 a 1 1 t\nq2 Q0 a 1 1 t\n\nq1 Q0 a 2 0.5 t\n",
     r"run\.txt:4: query 'q1' retrieves document 'a' again \(first at line 1\)"),
    (read_qrels, "q1 0 a 1\nq1 0 b\n", r"run\.txt:2: expected 4 fields"),
    (read_qrels, "q1 0 a 1\nq1 0 b high\n", r"run\.txt:2: relevance grade 'high' is not an integer"),
    (read_qrels, "q1 0 a 1\nq1 0 a 2\n",
     r"run\.txt:2: query 'q1' judges document 'a' again \(first at line 1\)"),
    (read_beir_qrels, "q1\ta\t1\n", r"run\.txt:1: a BEIR qrels file starts with the tab-separated header"),
    (read_beir_qrels, "query-id\tcorpus-id\tscore\nq1\ta\n", r"run\.txt:2: expected 3 tab-separated fields"),
    (read_beir_qrels, "query-id\tcorpus-id\tscore\nq1\ta\t1.5\n", r"run\.txt:2: relevance grade '1\.5'"),
])
def test_malformed_lines_name_file_and_line(tmp_path, reader, text, message) -> None:
    path = tmp_path / "run.txt"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message):
        reader(path)


def test_unreadable_files(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="cannot open .*missing.txt"):
        read_run(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes(b"q1 0 caf\xe9 1\n")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_qrels(tmp_path / "latin1.txt")


def test_unwritable_ids_and_tags(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="document id 'a b'"):
        write_run(embedlab.Ranking.from_dict({"q": {"a b": 1.0}}), tmp_path / "run")
    with pytest.raises(InvalidInputError, match="tag"):
        write_run(embedlab.Ranking.from_dict({"q": {"a": 1.0}}), tmp_path / "run", tag="my run")
    with pytest.raises(InvalidInputError, match="query id ''"):
        write_qrels({"": {"a": 1}}, tmp_path / "qrels")


def test_empty_run_file(tmp_path) -> None:
    (tmp_path / "run").write_text("\n")
    ranking = read_run(tmp_path / "run")
    assert len(ranking) == 0 and ranking.k == 0
