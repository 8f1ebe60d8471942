"""BEIR-format loading (real data in ../shared/data and broken folders), `[dataset]` tables and
`embedlab datasets`."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.cli import main
from embedlab.datasets import BUILTIN_DATASETS, load_beir, load_dataset_spec
from embedlab.errors import ConfigError, InvalidInputError, UnknownComponentError

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
BEIR_FOLDERS = sorted(p.parent.parent.name for p in DATA.glob("*/beir/corpus.jsonl"))


def write_beir(root: Path, corpus: list[dict], queries: list[dict], qrels: dict[str, str]) -> Path:
    """A BEIR folder; ``qrels`` maps a file name under qrels/ to its text."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    for name, text in qrels.items():
        (root / "qrels" / name).write_text(text)
    return root


CORPUS = [{"_id": "d1", "title": "One", "text": "first doc", "metadata": {"year": 2001, "lang": "en"}},
          {"_id": "d2", "title": "", "text": "second doc", "metadata": {"lang": "fr", "tags": ["x"]}},
          {"_id": 3, "title": "Three", "text": "third doc"}]
QUERIES = [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}]
TEST_TSV = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\t3\t0\nq2\td2\t1\n"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_beir(tmp_path / "tiny", CORPUS, QUERIES, {"test.tsv": TEST_TSV})


def test_scifact_matches_source_md() -> None:
    dataset = load_beir(DATA / "scifact" / "beir")
    assert dataset.name == "scifact"
    assert len(dataset.corpus) == 5183 and len(dataset.queries) == 1109
    assert dataset.splits == ["test", "train"]
    counts = {s: (len(q), sum(map(len, q.values()))) for s, q in dataset.qrels.items()}
    assert counts == {"test": (300, 339), "train": (809, 919)}
    assert {g for q in dataset.qrels["test"].values() for g in q.values()} == {1}
    assert dataset.metadata["sha256"]["corpus.jsonl"].startswith("1dcac0d43c0fa46d")
    assert dataset.metadata["sha256"]["qrels/test.tsv"].startswith("68c0ac63f1c24b9e")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # SOURCE.md: every qrel id exists
        split = dataset.split("test")
    assert len(split.queries) == 300
    assert dataset.corpus.documents()[0].startswith(dataset.corpus.titles[0] + " ")


def test_cranfield_matches_source_md() -> None:
    dataset = load_beir(DATA / "cranfield")  # the dataset root: its beir/ folder is found
    assert (dataset.name, len(dataset.corpus), len(dataset.queries)) == ("cranfield", 1400, 225)
    assert sum(map(len, dataset.qrels["test"].values())) == 1612
    assert sum(map(len, dataset.qrels["code_minus1"].values())) == 225
    assert {g for q in dataset.qrels["test"].values() for g in q.values()} == {1, 2, 3, 4}
    assert set(dataset.corpus.attributes) == {"A", "B"}
    assert dataset.corpus.attributes["B"].shape == (1400,)


@pytest.mark.parametrize("name", BEIR_FOLDERS)
def test_every_shared_beir_folder_loads_with_consistent_qrels(name: str) -> None:
    dataset = load_beir(DATA / name / "beir")
    assert dataset.splits and dataset.metadata["documents"] == len(dataset.corpus)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for split in dataset.splits:
            assert len(dataset.split(split).queries) == dataset.metadata["splits"][split]["queries"]


def test_shared_data_has_the_expected_beir_folders() -> None:
    assert {"scifact", "cranfield", "cosqa", "time", "npl-vaswani"} <= set(BEIR_FOLDERS)


def test_qrels_file_beside_corpus_is_the_test_split() -> None:
    dataset = load_beir(DATA / "limit-small", id_whitespace="underscore")
    assert (len(dataset.corpus), len(dataset.queries)) == (46, 1000)
    assert dataset.splits == ["test"]
    assert all(len(judged) == 2 for judged in dataset.qrels["test"].values())
    assert "Geneva_Durben" in dataset.corpus.position


def test_ids_with_whitespace_are_rejected_unless_replaced() -> None:
    """LIMIT's ids are people's names: by default the first one is an error naming file and line."""
    with pytest.raises(InvalidInputError, match=r"corpus.jsonl:1: document id 'Geneva Durben' contains whitespace"):
        load_beir(DATA / "limit-small")
    with pytest.raises(ConfigError, match="id_whitespace must be one of"):
        load_beir(DATA / "limit-small", id_whitespace="keep")


def test_tiny_folder_fields_attributes_and_metadata(tiny: Path) -> None:
    dataset = load_beir(tiny)
    assert dataset.name == "tiny"
    assert dataset.corpus.ids.tolist() == ["d1", "d2", "3"]
    assert dataset.corpus.titles == ("One", "", "Three")
    assert dataset.corpus.documents() == ["One first doc", "second doc", "Three third doc"]
    assert dataset.qrels["test"] == {"q1": {"d1": 2, "3": 0}, "q2": {"d2": 1}}
    year = dataset.corpus.attributes["year"]
    assert year.dtype == np.float64 and year[0] == 2001 and math.isnan(year[1])
    assert dataset.corpus.attributes["lang"].tolist() == ["en", "fr", None]
    assert "tags" not in dataset.corpus.attributes
    assert dataset.metadata["metadata_not_scalar"] == ["tags"]
    assert dataset.metadata["splits"] == {"test": {"queries": 2, "qrels": 3}}
    assert set(dataset.metadata["sha256"]) == {"corpus.jsonl", "queries.jsonl", "qrels/test.tsv"}


def test_complete_numeric_metadata_keeps_its_dtype(tmp_path: Path) -> None:
    corpus = [{"_id": str(i), "text": "t", "metadata": {"n": i, "ok": i > 0}} for i in range(3)]
    dataset = load_beir(write_beir(tmp_path / "d", corpus, QUERIES[:1], {"test.tsv": "q1\t0\t1\n"}))
    assert dataset.corpus.attributes["n"].dtype.kind == "i"
    assert dataset.corpus.attributes["ok"].tolist() == [False, True, True]
    assert dataset.corpus.titles is None  # no document has a title
    assert dataset.qrels["test"] == {"q1": {"0": 1}}  # header-less tsv


def test_jsonl_qrels_and_several_splits(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "d", CORPUS, QUERIES, {
        "dev.jsonl": json.dumps({"query-id": "q2", "corpus-id": "d1", "score": 1}) + "\n",
        "test.tsv": TEST_TSV})
    dataset = load_beir(root)
    assert dataset.splits == ["dev", "test"]
    assert dataset.qrels["dev"] == {"q2": {"d1": 1}}


def test_unknown_ids_in_qrels_warn_and_are_counted(tmp_path: Path) -> None:
    tsv = TEST_TSV + "q1\tnope\t1\nq9\td1\t1\nq9\td2\t1\n"
    dataset = load_beir(write_beir(tmp_path / "d", CORPUS, QUERIES, {"test.tsv": tsv}))
    with pytest.warns(UserWarning, match=r"1 unknown query id\(s\) and 1 unknown document id\(s\)"):
        split = dataset.split("test")
    assert split.qrels == {"q1": {"d1": 2, "3": 0}, "q2": {"d2": 1}}


def test_missing_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "corpus.jsonl").write_text(json.dumps(CORPUS[0]) + "\n")
    with pytest.raises(InvalidInputError, match=r"missing queries\.jsonl, qrels/<split>\.tsv\. "
                                                r"A BEIR folder holds corpus\.jsonl"):
        load_beir(tmp_path / "half")
    with pytest.raises(InvalidInputError, match="no such directory"):
        load_beir(tmp_path / "absent")


def test_malformed_json_names_file_and_line(tiny: Path) -> None:
    with open(tiny / "queries.jsonl", "a") as handle:
        handle.write('\n{"_id": "q3", "text": \n')
    with pytest.raises(InvalidInputError, match=r"queries\.jsonl:4: malformed JSON"):
        load_beir(tiny)


def test_invalid_utf8_names_file_and_line(tiny: Path) -> None:
    with open(tiny / "corpus.jsonl", "ab") as handle:
        handle.write(b'{"_id": "d9", "text": "caf\xe9"}\n')
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl:4: not valid UTF-8"):
        load_beir(tiny)


def test_missing_id_names_file_and_line(tiny: Path) -> None:
    (tiny / "corpus.jsonl").write_text(json.dumps(CORPUS[0]) + "\n" + json.dumps({"text": "x"}) + "\n")
    with pytest.raises(InvalidInputError, match=r"corpus\.jsonl:2: missing field '_id'"):
        load_beir(tiny)


@pytest.mark.parametrize("file", ["corpus.jsonl", "queries.jsonl"])
def test_duplicate_ids_name_the_file(tiny: Path, file: str) -> None:
    path = tiny / file
    path.write_text(path.read_text() + path.read_text().splitlines()[0] + "\n")
    with pytest.raises(InvalidInputError, match=rf"{file}: .*1 duplicate id"):
        load_beir(tiny)


@pytest.mark.parametrize(("tsv", "error"), [
    ("query-id\tcorpus-id\tscore\nq1\td1\n", r"test\.tsv:2: expected 3 tab-separated columns"),
    ("query-id\tcorpus-id\tscore\nq1\td1\t0.5\n", r"test\.tsv:2: relevance score must be an integer"),
])
def test_bad_qrels_rows(tmp_path: Path, tsv: str, error: str) -> None:
    with pytest.raises(InvalidInputError, match=error):
        load_beir(write_beir(tmp_path / "d", CORPUS, QUERIES, {"test.tsv": tsv}))


def test_repeated_qrels_pair_warns(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "d", CORPUS, QUERIES, {"test.tsv": TEST_TSV + "q1\td1\t1\n"})
    with pytest.warns(UserWarning, match="1 repeated"):
        dataset = load_beir(root)
    assert dataset.qrels["test"]["q1"]["d1"] == 1


def test_same_split_in_two_formats_is_ambiguous(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "d", CORPUS, QUERIES, {"test.tsv": TEST_TSV, "test.jsonl": ""})
    with pytest.raises(InvalidInputError, match="split 'test' has two qrels files"):
        load_beir(root)


def test_registry_and_dataset_spec(tiny: Path) -> None:
    assert set(BUILTIN_DATASETS) <= set(embedlab.registry().names("dataset"))
    assert embedlab.load_dataset("beir", path=tiny).name == "tiny"
    assert load_dataset_spec(path=str(tiny)).qrels["test"]["q2"] == {"d2": 1}
    assert load_dataset_spec(name="beir", path=tiny).name == "tiny"
    with pytest.raises(ConfigError, match="needs name"):
        load_dataset_spec()
    with pytest.raises(ConfigError, match="accepted parameters: path"):
        load_dataset_spec(path=tiny, limit=3)
    with pytest.raises(ConfigError, match="accepted parameters: limit"):
        load_dataset_spec(name="python-stdlib", size=3)
    with pytest.raises(UnknownComponentError, match="no dataset named 'scifakt'"):
        load_dataset_spec(name="scifakt")


def test_cli_lists_datasets(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "python-stdlib" in out and "Python standard library" in out and "BEIR folders" in out
    assert main(["datasets", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["python-stdlib"]["distribution"] == "embedlab"
    assert rows["beir"]["plugin"] == "embedlab" and rows["beir"]["description"]
