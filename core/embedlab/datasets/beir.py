"""Load a dataset in BEIR format from a folder.

A BEIR folder holds::

    corpus.jsonl     {"_id": ..., "title": ..., "text": ..., "metadata": {...}} per line
    queries.jsonl    {"_id": ..., "text": ...} per line
    qrels/<split>.tsv    header "query-id<TAB>corpus-id<TAB>score", then one judgment a line
    qrels/<split>.jsonl  {"query-id": ..., "corpus-id": ..., "score": ...} per line

Every file under ``qrels/`` becomes a split named after it. A single ``qrels.tsv`` or
``qrels.jsonl`` beside ``corpus.jsonl`` (as LIMIT ships it) is read as split ``test``. Scalar
values of a document's ``metadata`` (str, int, float, bool) become corpus attribute columns
(see :func:`_column` for their dtypes); keys holding lists or objects are left out and listed in
the dataset metadata under ``metadata_not_scalar``.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import InvalidInputError
from embedlab.persistence import sha256_file

LAYOUT = ("A BEIR folder holds corpus.jsonl (one {\"_id\", \"title\", \"text\"} object a line), "
          "queries.jsonl (one {\"_id\", \"text\"} object a line) and qrels/<split>.tsv with the "
          "header 'query-id<TAB>corpus-id<TAB>score' (or qrels/<split>.jsonl).")
_SCALARS = (str, int, float, bool)


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a UTF-8 file."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InvalidInputError(f"{path}:{number}: not valid UTF-8 ({error.reason} at byte "
                                        f"{error.start})") from None
            if line.strip():
                yield number, line


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line; errors name the file and line."""
    for number, line in _lines(path):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidInputError(f"{path}:{number}: malformed JSON ({error.msg} at column "
                                    f"{error.colno})") from None
        if not isinstance(record, dict):
            raise InvalidInputError(f"{path}:{number}: expected a JSON object, got "
                                    f"{type(record).__name__}")
        yield number, record


def _field(record: dict[str, Any], key: str, path: Path, number: int, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None:
        if required:
            raise InvalidInputError(f"{path}:{number}: missing field {key!r}")
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise InvalidInputError(f"{path}:{number}: field {key!r} must be a string, got {value!r}")
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _grade(value: Any, path: Path, number: int) -> int:
    try:
        grade = float(value)
    except (TypeError, ValueError):
        grade = math.nan
    if not grade.is_integer() or isinstance(value, bool):
        raise InvalidInputError(f"{path}:{number}: relevance score must be an integer, got {value!r}")
    return int(grade)


def _column(values: list[Any]) -> np.ndarray:
    """One attribute column: int, float or bool arrays where every document has a value of one
    type; float64 with NaN gaps for other numbers; otherwise (strings, gaps, mixed types) an
    object array with None gaps, so long strings do not become wide fixed-size arrays."""
    present = [v for v in values if v is not None]
    types = {type(v) for v in present}
    if len(present) == len(values) and len(types) == 1 and types <= {int, float, bool}:
        return np.asarray(values)
    if present and types <= {int, float}:
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=object)


def read_corpus(path: Path) -> tuple[Corpus, list[str]]:
    """The corpus and the metadata keys that were not scalar (left out of the attributes)."""
    ids, titles, texts, metadata = [], [], [], []
    for number, record in read_jsonl(path):
        ids.append(_field(record, "_id", path, number))
        titles.append(_field(record, "title", path, number, required=False))
        texts.append(_field(record, "text", path, number))
        meta = record.get("metadata") or {}
        if not isinstance(meta, dict):
            raise InvalidInputError(f"{path}:{number}: 'metadata' must be a JSON object")
        metadata.append(meta)
    keys = sorted({key for meta in metadata for key in meta})
    nested = [k for k in keys
              if any(not isinstance(m.get(k), _SCALARS) and m.get(k) is not None for m in metadata)]
    attributes = {k: _column([m.get(k) for m in metadata]) for k in keys if k not in nested}
    try:
        corpus = Corpus(ids, texts, titles if any(titles) else None, attributes)
    except InvalidInputError as error:
        raise InvalidInputError(f"{path}: {error}") from None
    return corpus, nested


def read_queries(path: Path) -> Queries:
    ids, texts = [], []
    for number, record in read_jsonl(path):
        ids.append(_field(record, "_id", path, number))
        texts.append(_field(record, "text", path, number))
    try:
        return Queries(ids, texts)
    except InvalidInputError as error:
        raise InvalidInputError(f"{path}: {error}") from None


def _qrel_rows(path: Path) -> Iterator[tuple[int, str, str, Any]]:
    if path.suffix == ".jsonl":
        for number, record in read_jsonl(path):
            yield (number, _field(record, "query-id", path, number),
                   _field(record, "corpus-id", path, number), record.get("score"))
        return
    for number, line in _lines(path):
        columns = line.rstrip("\r\n").split("\t")
        if len(columns) != 3:
            raise InvalidInputError(f"{path}:{number}: expected 3 tab-separated columns "
                                    f"(query-id, corpus-id, score), got {len(columns)}")
        if number == 1 and not _is_number(columns[2]):
            continue  # the header
        yield number, columns[0].strip(), columns[1].strip(), columns[2].strip()


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: grade}}`` of one qrels file (.tsv with header, or .jsonl)."""
    qrels: dict[str, dict[str, int]] = {}
    repeated = 0
    for number, query, doc, score in _qrel_rows(path):
        judged = qrels.setdefault(query, {})
        repeated += doc in judged
        judged[doc] = _grade(score, path, number)
    if repeated:
        warnings.warn(f"{path}: {repeated} repeated (query-id, corpus-id) pair(s); the last grade "
                      "of each is kept", stacklevel=3)
    return qrels


def qrels_files(root: Path) -> dict[str, Path]:
    """Split name -> qrels file of a BEIR folder."""
    files: dict[str, Path] = {}
    candidates = sorted((root / "qrels").glob("*.tsv")) + sorted((root / "qrels").glob("*.jsonl"))
    if not candidates:
        candidates = [p for p in (root / "qrels.tsv", root / "qrels.jsonl") if p.is_file()]
    for file in candidates:
        split = "test" if file.parent == root else file.stem
        if split in files:
            raise InvalidInputError(f"{root}: split {split!r} has two qrels files "
                                    f"({files[split].name} and {file.name}); keep one")
        files[split] = file
    return files


def _resolve(path: str | Path) -> Path:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise InvalidInputError(f"{root}: no such directory. {LAYOUT}")
    if not (root / "corpus.jsonl").is_file() and (root / "beir" / "corpus.jsonl").is_file():
        return root / "beir"
    return root


def load_beir(path: str | Path) -> Dataset:
    """Load the BEIR folder ``path`` (or a folder with a ``beir/`` subfolder) as a Dataset.

    The dataset is named after the folder (its parent when the folder is called ``beir``).
    """
    root = _resolve(path)
    qrels_paths = qrels_files(root)
    missing = [name for name in ("corpus.jsonl", "queries.jsonl") if not (root / name).is_file()]
    if not qrels_paths:
        missing.append("qrels/<split>.tsv")
    if missing:
        raise InvalidInputError(f"{root}: not a BEIR folder, missing {', '.join(missing)}. {LAYOUT}")
    corpus, nested = read_corpus(root / "corpus.jsonl")
    queries = read_queries(root / "queries.jsonl")
    qrels = {split: read_qrels(file) for split, file in qrels_paths.items()}
    files = [root / "corpus.jsonl", root / "queries.jsonl", *qrels_paths.values()]
    metadata = {
        "path": str(root.resolve()),
        "documents": len(corpus),
        "queries": len(queries),
        "splits": {split: {"queries": len(q), "qrels": sum(map(len, q.values()))}
                   for split, q in qrels.items()},
        "sha256": {file.relative_to(root).as_posix(): sha256_file(file) for file in files},
        "metadata_not_scalar": nested,
    }
    name = root.parent.name if root.name == "beir" else root.name
    return Dataset(name, corpus, queries, qrels, metadata)
