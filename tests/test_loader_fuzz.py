"""Seeded, bounded fuzzing of every loader (issue #11): mutated real files go in; only embedlab
errors (``EmbedlabError`` subclasses) or valid datasets come out. The plugins' file readers (the
``lmeb`` dataset's task folders, Seismic's JSONL) are fuzzed here too, with the same mutations.

Inputs are slices of real files (SciFact's BEIR folder, a TREC run and qrels written from it,
``examples/scifact.toml``) mutated at the byte level (insert, delete, replace, duplicate,
truncate, flip bits, byte-order marks, NUL, invalid UTF-8), at the line level (lines swapped,
repeated, emptied) and, for structured files, at the value level (a JSON or TOML value replaced by
a hostile one: deep nesting, 5,000-digit integers, wrong types, empty or whitespace ids, lone
surrogates). ``derandomize=True`` makes every run test the same examples; ``max_examples`` keeps
the whole file to a few seconds.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedlab import Dataset, EmbedlabError, Ranking
from embedlab.datasets import load_beir
from embedlab.experiment import load_config
from embedlab.ids import id_problem
from embedlab.trec import load_qrels, read_qrels, read_run, write_qrels, write_run

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "data" / "scifact" / "beir"
EXAMPLE = REPO / "examples" / "scifact.toml"
FUZZ = settings(derandomize=True, max_examples=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

HOSTILE_JSON = ['""', '" "', '"a\\u0000b"', '"\\ud800"', "null", "true", "1e999", "9" * 5000, "-1",
                "[]", "{}", "[" * 3000 + "]" * 3000, '{"a":' * 3000 + "1" + "}" * 3000, '"' + "x" * 5000 + '"',
                "2.5", '"\\ufeff"', "NaN", "Infinity"]
HOSTILE_TOML = ['""', '" "', "true", "-1", "0", "1.5", "nan", "inf", "9" * 5000, "[]", "{}", "[1, 2]",
                '{ name = 3 }', '["a", 1]', "[" * 200 + "]" * 200, '"\\u0000"', '"x"', "2147483648"]


def _head(path: Path, lines: int) -> bytes:
    with open(path, "rb") as handle:
        return b"".join(handle.readline() for _ in range(lines))


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Small real files to mutate."""
    assert SCIFACT.is_dir(), f"../shared/data not found beside the repository ({SCIFACT})"
    corpus = _head(SCIFACT / "corpus.jsonl", 12)
    queries = _head(SCIFACT / "queries.jsonl", 12)
    qrels = _head(SCIFACT / "qrels" / "test.tsv", 12)
    folder = tmp_path_factory.mktemp("trec")
    ids = [json.loads(line)["_id"] for line in corpus.decode().splitlines()]
    rng = np.random.default_rng(0)
    scores = np.sort(rng.random((3, len(ids))), axis=1)[:, ::-1]
    write_run(Ranking(["1", "3", "5"], [ids] * 3, scores), folder / "run.trec")
    write_qrels({"1": {ids[0]: 1, ids[1]: 0}, "3": {ids[2]: 2}}, folder / "qrels.txt")
    return {"corpus": corpus, "queries": queries, "qrels": qrels, "run": (folder / "run.trec").read_bytes(),
            "trec_qrels": (folder / "qrels.txt").read_bytes(), "toml": EXAMPLE.read_bytes()}


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` after 1-4 byte- or line-level edits."""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "flip", "truncate", "bom", "nul",
                                     "bad-utf8", "swap-lines", "repeat-line", "blank-line", "crlf"]))
        at = draw(st.integers(0, max(len(data), 1) - 1)) if data else 0
        if kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif kind == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 40)):]
        elif kind == "replace":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data = data[:at] + chunk + data[at + len(chunk):]
        elif kind == "flip":
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1:] if data else data
        elif kind == "truncate":
            data = data[:at]
        elif kind == "bom":
            data = b"\xef\xbb\xbf" + data
        elif kind == "nul":
            data = data[:at] + b"\x00" + data[at:]
        elif kind == "bad-utf8":
            data = data[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88"])) + data[at:]
        else:
            lines = data.split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            if kind == "swap-lines":
                lines[i], lines[j] = lines[j], lines[i]
            elif kind == "repeat-line":
                lines.insert(j, lines[i])
            elif kind == "blank-line":
                lines[i] = draw(st.sampled_from([b"", b" ", b"\t", b"\r"]))
            else:
                lines[i] += b"\r"
            data = b"\n".join(lines)
    return data


@st.composite
def json_value_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """One JSON line with one value (or key) replaced by a hostile literal."""
    lines = data.decode("utf-8").splitlines()
    row = draw(st.integers(0, len(lines) - 1))
    values = list(re.finditer(r'"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|true|false|null|\{\}|\[\]', lines[row]))
    if values:
        found = draw(st.sampled_from(values))
        literal = draw(st.sampled_from(HOSTILE_JSON))
        lines[row] = lines[row][:found.start()] + literal + lines[row][found.end():]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


@st.composite
def toml_value_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    """The experiment file with one ``key = value`` line's value replaced by a hostile literal."""
    lines = data.decode("utf-8").splitlines()
    assignments = [i for i, line in enumerate(lines) if re.match(r"^\s*[\w.-]+\s*=", line)]
    row = draw(st.sampled_from(assignments))
    key = lines[row].split("=", 1)[0]
    lines[row] = f"{key}= {draw(st.sampled_from(HOSTILE_TOML))}"
    return ("\n".join(lines) + "\n").encode()


def _check_dataset(dataset: Dataset) -> None:
    """What a valid dataset guarantees."""
    for ids in (dataset.corpus.ids.tolist(), dataset.queries.ids.tolist()):
        assert all(id_problem(i) is None for i in ids) and len(set(ids)) == len(ids)
    for qrels in dataset.qrels.values():
        for qid, judged in qrels.items():
            assert id_problem(qid) is None
            assert all(id_problem(d) is None and isinstance(g, int) for d, g in judged.items())


def _beir(tmp: Path, corpus: bytes, queries: bytes, qrels: bytes) -> Path:
    (tmp / "qrels").mkdir(parents=True, exist_ok=True)
    (tmp / "corpus.jsonl").write_bytes(corpus)
    (tmp / "queries.jsonl").write_bytes(queries)
    (tmp / "qrels" / "test.tsv").write_bytes(qrels)
    return tmp


def _expect_embedlab_error_or(call, check=lambda result: None) -> None:  # type: ignore[no-untyped-def]
    try:
        result = call()
    except EmbedlabError:
        return
    check(result)


def _lmeb(tmp: Path, corpus: bytes, queries: bytes, qrels: bytes) -> Path:
    """A BEIR slice as an LMEB task folder (``id`` instead of ``_id``, qrels.tsv at the top)."""
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "corpus.jsonl").write_bytes(corpus.replace(b'"_id"', b'"id"'))
    (tmp / "queries.jsonl").write_bytes(queries.replace(b'"_id"', b'"id"'))
    (tmp / "qrels.tsv").write_bytes(qrels)
    return tmp


def _load_lmeb(root: Path) -> Dataset:
    from embedlab_lmeb import load_lmeb

    return load_lmeb(root)


@pytest.mark.parametrize("layout, write, load", [("beir", _beir, load_beir), ("lmeb", _lmeb, _load_lmeb)])
@pytest.mark.parametrize("part", ["corpus", "queries", "qrels"])
def test_dataset_folder_with_a_mutated_file(seeds: dict[str, bytes], tmp_path: Path, part: str, layout: str,
                                            write, load) -> None:  # type: ignore[no-untyped-def]
    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        files = dict(corpus=seeds["corpus"], queries=seeds["queries"], qrels=seeds["qrels"])
        strategy = byte_mutations(files[part])
        if part != "qrels" and data.draw(st.booleans()):
            strategy = json_value_mutations(files[part])
        files[part] = data.draw(strategy)
        root = write(tmp_path / layout, **files)
        _expect_embedlab_error_or(lambda: load(root), _check_dataset)

    run()


def test_seismic_jsonl_mutated(tmp_path: Path) -> None:
    from embedlab_seismic import read_jsonl

    records = b"".join(json.dumps({"id": i, "content": "x", "vector": {"a": 0.5, "##b": i + 1.0}}).encode() + b"\n"
                       for i in range(6))

    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        strategy = json_value_mutations(records) if data.draw(st.booleans()) else byte_mutations(records)
        path = tmp_path / "documents.jsonl"
        path.write_bytes(data.draw(strategy))

        def check(result) -> None:  # type: ignore[no-untyped-def]
            ids, vectors, _ = result
            assert all(id_problem(i) is None for i in ids) and vectors.shape[0] == len(ids)
            assert vectors.dtype == np.float32

        _expect_embedlab_error_or(lambda: read_jsonl(path), check)

    run()


@pytest.mark.parametrize("reader, seed", [(read_run, "run"), (read_qrels, "trec_qrels"), (load_qrels, "qrels"),
                                          (load_qrels, "trec_qrels")])
@pytest.mark.parametrize("compressed", [False, True])
def test_trec_files_mutated(seeds: dict[str, bytes], tmp_path: Path, reader, seed: str, compressed: bool) -> None:  # type: ignore[no-untyped-def]
    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        content = data.draw(byte_mutations(seeds[seed]))
        path = tmp_path / ("file.gz" if compressed else "file.txt")
        if compressed:
            packed = gzip.compress(content, mtime=0)
            if data.draw(st.booleans()):  # damage the compressed stream itself
                packed = data.draw(byte_mutations(packed))
            content = packed
        path.write_bytes(content)

        def check(result) -> None:  # type: ignore[no-untyped-def]
            if isinstance(result, Ranking):
                assert all(id_problem(q) is None for q in result.query_ids.tolist())
                assert all(id_problem(d) is None for d in result.doc_ids[result.doc_ids != ""].tolist())
                assert not np.isnan(result.scores).any()
            else:
                assert all(isinstance(g, int) and id_problem(d) is None for j in result.values() for d, g in j.items())

        _expect_embedlab_error_or(lambda: reader(path), check)

    run()


def test_experiment_toml_mutated(seeds: dict[str, bytes], tmp_path: Path) -> None:
    @FUZZ
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        strategy = toml_value_mutations(seeds["toml"]) if data.draw(st.booleans()) else byte_mutations(seeds["toml"])
        path = tmp_path / "experiment.toml"
        path.write_bytes(data.draw(strategy))

        def check(config) -> None:  # type: ignore[no-untyped-def]
            assert config.k >= 1 and 0 <= config.seed < 2**31 and config.metrics and config.pipelines
            assert all(isinstance(m, str) for m in config.metrics)
            assert not any(isinstance(v, float) and math.isnan(v) for v in (config.k, config.seed))

        _expect_embedlab_error_or(lambda: load_config(path), check)

    run()
