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
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.ids import check_id, underscore_whitespace
from embedlab.persistence import sha256_file
from embedlab.trec import GRADE_RANGE, is_beir_header

LAYOUT = ("A BEIR folder holds corpus.jsonl (one {\"_id\", \"title\", \"text\"} object a line), "
          "queries.jsonl (one {\"_id\", \"text\"} object a line) and qrels/<split>.tsv with the "
          "header 'query-id<TAB>corpus-id<TAB>score' (or qrels/<split>.jsonl).")
_SCALARS = (str, int, float, bool)
#: What ``load_beir`` does with whitespace inside ids: reject it, or replace each run by ``_``.
ID_WHITESPACE = ("error", "underscore")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank line of a UTF-8 file (a byte-order mark at the start
    is skipped)."""
    try:
        handle = open(path, "rb")
    except OSError as error:
        raise InvalidInputError(f"cannot read {path}: {error.strerror or error}") from None
    with handle:
        for number, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
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
        except RecursionError:
            raise InvalidInputError(f"{path}:{number}: JSON nested too deeply") from None
        except ValueError as error:  # an integer of more than 4,300 digits
            raise InvalidInputError(f"{path}:{number}: malformed JSON ({str(error).split(';')[0]})") from None
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
        raise InvalidInputError(f"{path}:{number}: field {key!r} must be a string, got "
                                f"{type(value).__name__}")
    return str(value)


def _id_field(record: dict[str, Any], key: str, path: Path, number: int, what: str,
              id_whitespace: str) -> str:
    """A required id field, checked (:mod:`embedlab.ids`)."""
    return _checked_id(_field(record, key, path, number), f"{path}:{number}", what, id_whitespace)


def _checked_id(value: str, where: str, what: str, id_whitespace: str) -> str:
    if id_whitespace == "underscore":
        value = underscore_whitespace(value)
    return check_id(value, where, what)


def _grade(value: Any, path: Path, number: int) -> int:
    """An integer grade (``2``, ``2.0``, ``"2"``) within int64."""
    grade: Any = None
    if isinstance(value, str):
        value = value.strip()
        try:
            grade = int(value)
        except ValueError:
            grade = _integral(_float(value))
    elif isinstance(value, int) and not isinstance(value, bool):
        grade = value
    elif isinstance(value, float):
        grade = _integral(value)
    if grade is None:
        shown = repr(value)[:40] if isinstance(value, (str, int, float)) else type(value).__name__
        raise InvalidInputError(f"{path}:{number}: relevance score must be an integer, got {shown}")
    if not GRADE_RANGE[0] <= grade <= GRADE_RANGE[1]:
        raise InvalidInputError(f"{path}:{number}: relevance score {str(grade)[:20]}... is out of range")
    return int(grade)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _integral(value: float) -> int | None:
    return int(value) if math.isfinite(value) and value.is_integer() else None


def _column(values: list[Any]) -> np.ndarray:
    """One attribute column: int, float or bool arrays where every document has a value of one
    type; float64 with NaN gaps for other numbers; otherwise (strings, gaps, mixed types) an
    object array with None gaps, so long strings do not become wide fixed-size arrays."""
    present = [v for v in values if v is not None]
    types = {type(v) for v in present}
    if types == {int} and not all(GRADE_RANGE[0] <= v <= GRADE_RANGE[1] for v in present):
        types = {float}  # integers beyond int64 are kept as float64
    if len(present) == len(values) and len(types) == 1 and types <= {int, float, bool}:
        return np.asarray(values, dtype=next(iter(types)))
    if present and types <= {int, float}:
        return np.array([math.nan if v is None else v for v in values], dtype=np.float64)
    return np.array(values, dtype=object)


def read_corpus(path: Path, id_whitespace: str = "error") -> tuple[Corpus, list[str]]:
    """The corpus and the metadata keys that were not scalar (left out of the attributes)."""
    ids, titles, texts, metadata = [], [], [], []
    for number, record in read_jsonl(path):
        ids.append(_id_field(record, "_id", path, number, "document id", id_whitespace))
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


def read_queries(path: Path, id_whitespace: str = "error") -> Queries:
    ids, texts = [], []
    for number, record in read_jsonl(path):
        ids.append(_id_field(record, "_id", path, number, "query id", id_whitespace))
        texts.append(_field(record, "text", path, number))
    try:
        return Queries(ids, texts)
    except InvalidInputError as error:
        raise InvalidInputError(f"{path}: {error}") from None


def _qrel_rows(path: Path, id_whitespace: str) -> Iterator[tuple[int, str, str, Any]]:
    """(line, query id, document id, score) of every judgment; a TSV's first line is skipped only
    when it is the header ``query-id<TAB>corpus-id<TAB>score``."""
    if path.suffix == ".jsonl":
        for number, record in read_jsonl(path):
            yield (number, _id_field(record, "query-id", path, number, "query id", id_whitespace),
                   _id_field(record, "corpus-id", path, number, "document id", id_whitespace),
                   record.get("score"))
        return
    first = True
    for number, line in _lines(path):
        columns = line.rstrip("\r\n").split("\t")
        if first and is_beir_header(columns):
            first = False
            continue
        first = False
        if len(columns) != 3:
            raise InvalidInputError(f"{path}:{number}: expected 3 tab-separated columns "
                                    f"(query-id, corpus-id, score), got {len(columns)}")
        where = f"{path}:{number}"
        yield (number, _checked_id(columns[0].strip(), where, "query id", id_whitespace),
               _checked_id(columns[1].strip(), where, "document id", id_whitespace), columns[2].strip())


def read_qrels(path: Path, id_whitespace: str = "error") -> dict[str, dict[str, int]]:
    """``{query_id: {doc_id: grade}}`` of one qrels file (.tsv with header, or .jsonl)."""
    qrels: dict[str, dict[str, int]] = {}
    repeated = 0
    for number, query, doc, score in _qrel_rows(path, id_whitespace):
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


def load_beir(path: str | Path, id_whitespace: str = "error") -> Dataset:
    """Load the BEIR folder ``path`` (or a folder with a ``beir/`` subfolder) as a Dataset.

    The dataset is named after the folder (its parent when the folder is called ``beir``). Ids
    follow :mod:`embedlab.ids`: an empty id, or one holding NUL or a lone surrogate, is an error
    naming the file and line; so is whitespace, unless ``id_whitespace="underscore"``, which
    replaces each run of whitespace by ``_`` (``"Geneva Durben"`` -> ``"Geneva_Durben"``, as
    TREC files need; LIMIT's ids are names).
    """
    if id_whitespace not in ID_WHITESPACE:
        raise ConfigError(f"beir: id_whitespace must be one of {', '.join(map(repr, ID_WHITESPACE))}, "
                          f"got {id_whitespace!r}")
    root = _resolve(path)
    qrels_paths = qrels_files(root)
    missing = [name for name in ("corpus.jsonl", "queries.jsonl") if not (root / name).is_file()]
    if not qrels_paths:
        missing.append("qrels/<split>.tsv")
    if missing:
        raise InvalidInputError(f"{root}: not a BEIR folder, missing {', '.join(missing)}. {LAYOUT}")
    corpus, nested = read_corpus(root / "corpus.jsonl", id_whitespace)
    queries = read_queries(root / "queries.jsonl", id_whitespace)
    qrels = {split: read_qrels(file, id_whitespace) for split, file in qrels_paths.items()}
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
