"""What loaders accept (issue #11): ids, byte-order marks, header lines, damaged and hostile files,
and memory that follows the data. Every class of bad input ends in an embedlab error naming the
file and line; the fuzz suite (tests/test_loader_fuzz.py) keeps it that way."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab import Corpus, InvalidInputError, Queries, Ranking
from embedlab.datasets import load_beir
from embedlab.ids import ID_DTYPE, check_ids, id_problem
from embedlab.trec import load_qrels, read_beir_qrels, read_qrels, read_run, write_run

BOM = "\ufeff"
BAD_IDS = {"empty": "", "space": "a b", "tab": "a\tb", "nbsp": "a\u00a0b", "nul": "a\x00b",
           "surrogate": "a\ud800b"}


def beir_folder(root: Path, corpus: str, queries: str, qrels: str, qrels_name: str = "test.tsv") -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(corpus, encoding="utf-8")
    (root / "queries.jsonl").write_text(queries, encoding="utf-8")
    (root / "qrels" / qrels_name).write_text(qrels, encoding="utf-8")
    return root


CORPUS = '{"_id": "d1", "text": "one"}\n{"_id": "d2", "text": "two"}\n'
QUERIES = '{"_id": "q1", "text": "first?"}\n'
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\n"


def jsonl_id(value: str) -> str:
    """A JSON string literal for ``value`` (lone surrogates as escapes, as JSON writes them)."""
    return json.dumps(value)


# -- ids ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", BAD_IDS.items())
def test_id_rules(name: str, value: str) -> None:
    assert id_problem(value) is not None
    assert id_problem("doc-1:é/x") is None


@pytest.mark.parametrize("name, value", BAD_IDS.items())
@pytest.mark.parametrize("where", ["corpus", "queries", "qrels-jsonl"])
def test_beir_jsonl_rejects_bad_ids_with_file_and_line(tmp_path: Path, name: str, value: str, where: str) -> None:
    corpus, queries, qrels, qrels_name = CORPUS, QUERIES, QRELS, "test.tsv"
    if where == "corpus":
        corpus += f'{{"_id": {jsonl_id(value)}, "text": "bad"}}\n'
    elif where == "queries":
        queries += f'{{"_id": {jsonl_id(value)}, "text": "bad"}}\n'
    else:
        qrels_name = "test.jsonl"
        qrels = ('{"query-id": "q1", "corpus-id": "d1", "score": 1}\n'
                 f'{{"query-id": "q1", "corpus-id": {jsonl_id(value)}, "score": 1}}\n')
    root = beir_folder(tmp_path / "b", corpus, queries, qrels, qrels_name)
    line = 3 if where == "corpus" else 2
    with pytest.raises(InvalidInputError, match=rf"\.jsonl:{line}: (document|query) id .* ids must be non-empty"):
        load_beir(root)


@pytest.mark.parametrize("value", ["", "a b", "a\x00b"])
def test_beir_tsv_rejects_bad_ids(tmp_path: Path, value: str) -> None:
    root = beir_folder(tmp_path / "b", CORPUS, QUERIES, QRELS + f"q1\t{value}\t1\n")
    with pytest.raises(InvalidInputError, match=r"test\.tsv:3: "):
        load_beir(root)
    (tmp_path / "q.tsv").write_text(QRELS + f"q1\t{value}\t1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"q\.tsv:3: "):
        read_beir_qrels(tmp_path / "q.tsv")


def test_trec_files_reject_nul_with_file_and_line(tmp_path: Path) -> None:
    run = tmp_path / "run.trec"
    run.write_text("q1 Q0 d1 1 1.0 t\nq1 Q0 d\x002 2 0.5 t\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"run\.trec:2: contains a NUL"):
        read_run(run)
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q\x001 0 d1 1\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"qrels\.txt:1: contains a NUL"):
        read_qrels(qrels)


@pytest.mark.parametrize("value", ["", "a b", "a\x00b", "a\ud800b"])
def test_corpus_and_queries_reject_bad_ids(value: str) -> None:
    with pytest.raises(InvalidInputError, match="ids must be non-empty"):
        Corpus(["d1", value], ["x", "y"])
    with pytest.raises(InvalidInputError, match="ids must be non-empty"):
        Queries([value], ["x"])


def test_empty_id_can_no_longer_hide_as_padding(tmp_path: Path) -> None:
    """The original report: a document with _id "" loaded, then never counted."""
    root = beir_folder(tmp_path / "b", '{"_id": "", "text": "x"}\n' + CORPUS, QUERIES, QRELS)
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl:1: document id '' is empty"):
        load_beir(root)


def test_check_ids_finds_the_first_bad_one_in_a_large_array() -> None:
    ids = np.asarray([f"d{i}" for i in range(100_000)], dtype=ID_DTYPE)
    check_ids(ids, "document")
    ids[77_777] = "d 1"
    with pytest.raises(InvalidInputError, match="'d 1' at position 77777 contains whitespace"):
        check_ids(ids, "document")


# -- byte-order marks and header lines ----------------------------------------------------------

def test_bom_is_accepted_in_every_beir_file(tmp_path: Path) -> None:
    root = beir_folder(tmp_path / "b", BOM + CORPUS, BOM + QUERIES, BOM + QRELS)
    dataset = load_beir(root)
    assert dataset.corpus.ids.tolist() == ["d1", "d2"] and dataset.queries.ids.tolist() == ["q1"]
    assert dataset.qrels["test"] == {"q1": {"d1": 1}}
    headerless = beir_folder(tmp_path / "h", CORPUS, QUERIES, BOM + "q1\td2\t1\n")
    assert load_beir(headerless).qrels["test"] == {"q1": {"d2": 1}}


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_bom_does_not_rename_the_first_query_of_trec_files(tmp_path: Path, suffix: str) -> None:
    def write(name: str, text: str) -> Path:
        path = tmp_path / (name + suffix)
        data = (BOM + text).encode("utf-8")
        path.write_bytes(gzip.compress(data) if suffix else data)
        return path

    run = read_run(write("run", "q1 Q0 d1 1 2.0 t\nq2 Q0 d2 1 1.0 t\n"))
    assert run.query_ids.tolist() == ["q1", "q2"]
    assert read_qrels(write("qrels", "q1 0 d1 1\n")) == {"q1": {"d1": 1}}
    assert load_qrels(write("beir", "query-id\tcorpus-id\tscore\nq1\td1\t1\n")) == {"q1": {"d1": 1}}


def test_headerless_tsv_with_a_bad_first_grade_is_an_error_not_a_lost_judgment(tmp_path: Path) -> None:
    root = beir_folder(tmp_path / "b", CORPUS, QUERIES, "q1\td1\tx\nq1\td2\t1\n")
    with pytest.raises(InvalidInputError, match=r"test\.tsv:1: relevance score must be an integer, got 'x'"):
        load_beir(root)
    ok = beir_folder(tmp_path / "ok", CORPUS, QUERIES, "Query-ID\tCorpus-ID\tScore\nq1\td1\t1\nq1\td2\t2\n")
    assert load_beir(ok).qrels["test"] == {"q1": {"d1": 1, "d2": 2}}


# -- damaged and hostile files ------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"_id": "d9", "text": "x", "n": ' + "9" * 5000 + "}", "malformed JSON"),
    ('{"_id": "d9", "text": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply|must be a string"),
])
def test_hostile_json_lines(tmp_path: Path, line: str, message: str) -> None:
    root = beir_folder(tmp_path / "b", CORPUS + line + "\n", QUERIES, QRELS)
    with pytest.raises(InvalidInputError, match=rf"corpus\.jsonl:3: .*({message})"):
        load_beir(root)


@pytest.mark.parametrize("score, message", [
    ("1e400", "must be an integer"), ("9" * 5000, "Exceeds the limit"),
    (str(2**70), "out of range"), ("true", "must be an integer"), ('"2"', None), ("2.0", None),
])
def test_qrels_grades_are_integers_in_range(tmp_path: Path, score: str, message: str | None) -> None:
    qrels = f'{{"query-id": "q1", "corpus-id": "d1", "score": {score}}}\n'
    root = beir_folder(tmp_path / "b", CORPUS, QUERIES, qrels, "test.jsonl")
    if message is None:
        assert load_beir(root).qrels["test"] == {"q1": {"d1": 2}}
        return
    with pytest.raises(InvalidInputError, match=rf"test\.jsonl:1: .*({message})"):
        load_beir(root)


def test_trec_grades_out_of_range(tmp_path: Path) -> None:
    path = tmp_path / "qrels.txt"
    path.write_text(f"q1 0 d1 {2**64}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"qrels\.txt:1: .*out of range"):
        read_qrels(path)
    path.write_text(f"q1 0 d1 {'7' * 5000}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"qrels\.txt:1: .*not an integer"):
        read_qrels(path)


def test_huge_integer_metadata_becomes_a_float_column(tmp_path: Path) -> None:
    corpus = '{"_id": "d1", "text": "x", "metadata": {"n": %d}}\n{"_id": "d2", "text": "y", "metadata": {"n": 1}}\n'
    root = beir_folder(tmp_path / "b", corpus % 2**70, QUERIES, QRELS)
    column = load_beir(root).corpus.attributes["n"]
    assert column.dtype == np.float64 and column[0] == 2.0**70


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not-gzip"])
def test_damaged_gzip_is_an_embedlab_error(tmp_path: Path, damage: str) -> None:
    text = "".join(f"q{i % 50} Q0 d{i} {i} {1 / (i + 1)!r} t\n" for i in range(5000)).encode()
    data = gzip.compress(text)
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "flipped":
        data = data[:200] + bytes(b ^ 0xFF for b in data[200:260]) + data[260:]
    else:
        data = b"\x1f\x8b" + b"\x00" * 50
    path = tmp_path / "run.trec.gz"
    path.write_bytes(data)
    with pytest.raises(InvalidInputError, match=r"run\.trec\.gz"):
        read_run(path)
    with pytest.raises(InvalidInputError, match=r"run\.trec\.gz"):
        load_qrels(path)


def test_unreadable_beir_file(tmp_path: Path) -> None:
    root = beir_folder(tmp_path / "b", CORPUS, QUERIES, QRELS)
    (root / "corpus.jsonl").unlink()
    (root / "corpus.jsonl").mkdir()  # a directory where the file should be
    with pytest.raises(InvalidInputError, match="not a BEIR folder|cannot read"):
        load_beir(root)


# -- memory follows the data; absurd depths are refused, not attempted ---------------------------

def test_a_long_id_does_not_widen_every_id() -> None:
    """Fixed-width unicode arrays made 20,000 ids as wide as one 50 KB id: 4 GB for 20,000 ids."""
    ids = [f"d{i}" for i in range(20_000)] + ["x" * 50_000]
    corpus = Corpus(ids, ["text"] * len(ids))
    assert corpus.ids.dtype == ID_DTYPE and corpus.ids.nbytes < 1_000_000
    ranking = Ranking(["q1", "q2"], [[ids[-1], "d1"], ["d2", ""]], [[2.0, 1.0], [1.0, -np.inf]])
    assert ranking.doc_ids.nbytes < 1_000 and ranking.doc_ids[0, 0] == ids[-1]


def test_read_run_memory_follows_the_run(tmp_path: Path) -> None:
    path = tmp_path / "run.trec"
    long_id = "y" * 1_000_000
    path.write_text("".join(f"q{i} Q0 d{i} 1 1.0 t\n" for i in range(2000)) + f"q0 Q0 {long_id} 2 0.5 t\n")
    ranking = read_run(path)
    assert ranking.doc_ids.shape == (2000, 2) and ranking.doc_ids.nbytes < 100_000
    assert ranking.doc_ids[0].tolist() == ["d0", long_id]
    out = tmp_path / "again.trec"
    write_run(ranking, out)
    assert read_run(out).to_dict() == ranking.to_dict()


def test_read_run_too_deep_to_hold_is_refused_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlab.ranking

    monkeypatch.setattr(embedlab.ranking, "memory_bytes", lambda: 2_000_000)
    path = tmp_path / "run.trec"
    lines = [f"q0 Q0 d{i} {i} {-i} t\n" for i in range(50_000)] + [f"q{i} Q0 d0 1 1 t\n" for i in range(1, 200)]
    path.write_text("".join(lines))
    with pytest.raises(InvalidInputError, match=r"200 queries x 50,000 documents needs .* keeps the best k"):
        read_run(path)
    best = read_run(path, k=3)
    assert best.k == 3 and best.doc_ids[0].tolist() == ["d0", "d1", "d2"]


def test_from_dict_width_follows_the_data() -> None:
    ranking = Ranking.from_dict({"q1": {"d1": 1.0, "d2": 2.0}}, k=10**12)
    assert ranking.k == 2 and ranking.doc_ids[0].tolist() == ["d2", "d1"]


@pytest.mark.parametrize(("run", "message"), [
    ({"q1": {"": 2.0, "d1": 1.0}}, "document id '' at position 0 is empty"),
    ({"q1": {"d1": 1.0}, "q 2": {"d1": 1.0}}, "query id 'q 2' at position 1 contains whitespace"),
])
def test_from_dict_checks_ids(run, message) -> None:
    """An empty document id became the padding of a ranking built from a dict (scored, never counted)."""
    with pytest.raises(InvalidInputError, match=message):
        Ranking.from_dict(run)


def test_metrics_are_unchanged_by_long_ids() -> None:
    long_id = "z" * 20_000
    ranking = Ranking(["q1"], [[long_id, "d1", ""]], [[3.0, 2.0, -np.inf]])
    result = embedlab.evaluate(ranking, {"q1": {long_id: 1, "d9": 1}}, ["nDCG@10", "R@10"])
    assert result["R@10"] == 0.5 and result["nDCG@10"] == pytest.approx(1 / (1 + 1 / np.log2(3)))
