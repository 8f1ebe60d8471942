"""Reading Seismic's JSONL format: the toy files as published, a byte-order mark, bad ids and hostile lines."""

from __future__ import annotations

import json

import pytest
from embedlab_seismic import read_jsonl

from embedlab.errors import InvalidInputError

RECORDS = [{"id": 7, "content": "a", "vector": {"x": 0.5, "y": 1.0}}, {"id": "d2", "vector": {"y": 2}}]


def _file(tmp_path, text: str | bytes):
    path = tmp_path / "documents.jsonl"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_records_are_read_with_and_without_a_byte_order_mark(tmp_path) -> None:
    text = "".join(json.dumps(r) + "\n" for r in RECORDS)
    ids, vectors, vocabulary = read_jsonl(_file(tmp_path, text))
    assert ids == ["7", "d2"] and vocabulary == {"x": 0, "y": 1}
    assert vectors.toarray().tolist() == [[0.5, 1.0], [0.0, 2.0]]
    with_bom, bom_vectors, _ = read_jsonl(_file(tmp_path, "\ufeff" + text))
    assert with_bom == ids and (bom_vectors != vectors).nnz == 0


@pytest.mark.parametrize(("text", "message"), [
    ('{"id": "", "vector": {}}\n', r"documents.jsonl:1: id '' is empty"),
    ('{"id": 1, "vector": {}}\n{"id": "a\\u0000b", "vector": {}}\n', r"documents.jsonl:2: id 'a\\x00b' contains NUL"),
    ('{"id": "a", "vector": {"x": "0.5"}}\n', r"documents.jsonl:1: not a Seismic record"),
    ('{"id": "a", "vector": [1]}\n', r"documents.jsonl:1: not a Seismic record"),
    ('{"vector": {}}\n', r"documents.jsonl:1: not a Seismic record"),
    ("[" * 100_000 + "\n", r"documents.jsonl:1: JSON nested too deeply"),
    (b'{"id": "\xff", "vector": {}}\n', r"documents.jsonl:1: not valid UTF-8"),
    ("[1]\n", r"documents.jsonl:1: expected a JSON object"),
])
def test_bad_records_name_the_file_and_line(tmp_path, text, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        read_jsonl(_file(tmp_path, text))
