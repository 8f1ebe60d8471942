"""LMEB's format round trip and scene filtering, the dialogue generator, and Rcap against LMEB's formula."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
from embedlab_lmeb import lmeb_dialogue, load_lmeb, scene_of, write_lmeb

import embedlab
from embedlab import Pipeline
from embedlab.errors import InvalidInputError
from embedlab.metrics import evaluate
from embedlab.ranking import Ranking, SearchResult


def lmeb_recall_cap(qrels: dict, results: dict, k: int) -> dict:
    """LMEB's ``recall_cap`` (metric.py), written out here as the reference."""
    out = {}
    for query, scores in results.items():
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)[:k]
        relevant = sum(1 for g in qrels[query].values() if g > 0)
        hits = sum(1 for d, _ in ranked if qrels[query].get(d, 0) > 0)
        out[query] = hits / min(relevant, k)
    return out


def test_rcap_equals_lmebs_formula() -> None:
    rng = np.random.default_rng(0)
    docs = np.array([f"d{i}" for i in range(30)])
    qrels = {f"q{i}": {str(d): 1 for d in rng.choice(docs, int(rng.integers(1, 8)), replace=False)}
             for i in range(20)}
    scores = rng.standard_normal((20, 30))
    order = np.argsort(-scores, axis=1)
    ranking = Ranking.from_search([f"q{i}" for i in range(20)],
                                  SearchResult(np.take_along_axis(scores, order, 1), order), docs)
    results = {f"q{i}": dict(zip(docs.tolist(), scores[i].tolist())) for i in range(20)}
    for k in (1, 3, 5, 10):
        ours = evaluate(ranking, qrels, [f"Rcap@{k}"]).query_values(f"Rcap@{k}")
        expected = lmeb_recall_cap(qrels, results, k)
        assert ours == pytest.approx(expected)
    assert str(embedlab.metrics.parse_metric("Rcap@10")) == "Rcap@10"


def test_dialogue_sessions_hold_their_answers() -> None:
    data = lmeb_dialogue(conversations=3, sessions=4, turns=12, queries_per_kind=2)
    corpus, split = data.corpus, data.split("test")
    assert len(corpus) == 12 and len(split.queries) == 18
    kinds = data.metadata["query_kinds"]
    for query_id, question in zip(split.queries.ids.tolist(), split.queries.texts):
        (doc,) = split.qrels[query_id]
        text = corpus.texts[corpus.position[doc]]
        scene = data.metadata["scenes"][scene_of(query_id, data.metadata["scenes"])]
        assert doc in scene and set(data.exclude["test"][query_id]) == set(corpus.ids.tolist()) - set(scene)
        if kinds[query_id] == "temporal":
            assert question.split()[-1].rstrip("?") in text and "Today I" in text
        elif kinds[query_id] == "knowledge-update":
            assert "favourite " + question.split("favourite ")[1].split()[0] + " is now" in text
        else:
            relative, name = question.split("'s ")[1].split()[:2]
            assert f"my {relative} {name} lives in" in text


def test_task_folder_round_trip_and_scene_filtering(tmp_path) -> None:
    data = lmeb_dialogue(conversations=2, sessions=3, turns=8, queries_per_kind=1)
    folder = write_lmeb(data, tmp_path / "task", data.metadata["scenes"])
    loaded = load_lmeb(folder)
    assert loaded.corpus.ids.tolist() == data.corpus.ids.tolist() and loaded.corpus.texts == data.corpus.texts
    assert loaded.split("test").qrels == data.split("test").qrels
    assert loaded.exclude["test"] == data.exclude["test"]
    pipeline = Pipeline.from_names(encoder={"name": "hashing", "dim": 128})
    pipeline.build(loaded.corpus)
    split = loaded.split("test")
    ranking = pipeline.search(split.queries, 10, exclude=split.exclude)
    for row, query_id in enumerate(ranking.query_ids.tolist()):
        returned = {d for d in ranking.doc_ids[row] if d}
        assert returned and all(d.startswith("_".join(query_id.split("_")[:2]) + "_") for d in returned)


def test_bad_task_folders(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="no corpus.jsonl"):
        load_lmeb(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "text": "x"}\nnot json\n', encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text(json.dumps({"id": "q", "text": "x"}) + "\n", encoding="utf-8")
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq\ta\tone\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="corpus.jsonl:2: malformed JSON"):
        load_lmeb(tmp_path)
    (tmp_path / "corpus.jsonl").write_text('{"id": "a", "text": "x"}\n', encoding="utf-8")
    with pytest.raises(InvalidInputError, match="qrels.tsv:2: relevance score must be an integer, got 'one'"):
        load_lmeb(tmp_path)
    assert scene_of("locomo_conv1_q3", {"locomo_conv1": []}) == "locomo_conv1"
    assert scene_of("q7", {"q7": []}) == "q7" and scene_of("x_y_z", {}) is None


BOM = "\ufeff".encode()


def _task(tmp_path):
    data = lmeb_dialogue(conversations=2, sessions=3, turns=8, queries_per_kind=1)
    return data, write_lmeb(data, tmp_path / "task", data.metadata["scenes"])


def test_task_files_may_start_with_a_byte_order_mark(tmp_path) -> None:
    data, folder = _task(tmp_path)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels.tsv", "candidates.jsonl"):
        (folder / name).write_bytes(BOM + (folder / name).read_bytes())
    loaded = load_lmeb(folder)
    assert loaded.corpus.ids.tolist() == data.corpus.ids.tolist()
    assert loaded.queries.ids.tolist() == data.queries.ids.tolist()
    assert loaded.split("test").qrels == data.split("test").qrels and loaded.exclude == data.exclude


def test_a_headerless_qrels_file_keeps_its_first_judgment(tmp_path) -> None:
    data, folder = _task(tmp_path)
    lines = (folder / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]
    first_query, first_doc, _ = lines[0].split("\t")
    (folder / "qrels.tsv").write_text("\n".join([f"{first_query}\t{first_doc}\t1.0", *lines[1:]]) + "\n",
                                      encoding="utf-8")
    assert load_lmeb(folder).split("test").qrels == data.split("test").qrels


@pytest.mark.parametrize(("name", "content", "message"), [
    ("corpus.jsonl", '{"id": "", "text": "x"}\n', r"corpus.jsonl:1: document id '' is empty"),
    ("queries.jsonl", '{"id": "a b", "text": "x"}\n', r"queries.jsonl:1: query id 'a b' contains whitespace"),
    ("qrels.tsv", "query-id\tcorpus-id\tscore\nq\t\x00\t1\n", r"qrels.tsv:2: .*NUL"),
    ("corpus.jsonl", "[" * 100_000 + "\n", r"corpus.jsonl:1: JSON nested too deeply"),
    ("corpus.jsonl", b'{"id": "a", "text": "\xff"}\n', r"corpus.jsonl:1: not valid UTF-8"),
    ("candidates.jsonl", '{"scene_id": "s"}\n', r"candidates.jsonl:1: 'candidate_doc_ids' must be a list"),
])
def test_bad_ids_and_hostile_files_name_the_file_and_line(tmp_path, name, content, message) -> None:
    _, folder = _task(tmp_path)
    data = content if isinstance(content, bytes) else content.encode("utf-8")
    (folder / name).write_bytes(data)
    with pytest.raises(InvalidInputError, match=message):
        load_lmeb(folder)


def test_written_files_get_the_users_umask(tmp_path) -> None:
    """They were owner-only (tempfile), unlike every other output."""
    previous = os.umask(0o022)
    try:
        _, folder = _task(tmp_path)
    finally:
        os.umask(previous)
    modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in folder.iterdir()}
    assert modes == dict.fromkeys(["corpus.jsonl", "queries.jsonl", "qrels.tsv", "candidates.jsonl"], 0o644)
