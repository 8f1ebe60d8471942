"""TREC run and qrels files, and BEIR qrels TSV files (plain or ``.gz``).

* Run: ``qid Q0 docid rank score tag`` per line, whitespace-separated. As trec_eval does, the
  ``Q0`` and ``rank`` columns are ignored on reading: documents are ordered by score, descending,
  ties by document id descending (trec_eval's order).
* TREC qrels: ``qid iteration docid grade``; the iteration column is ignored.
* BEIR qrels: a tab-separated file whose first line is the header ``query-id corpus-id score``.

Malformed lines raise :class:`~embedlab.errors.InvalidInputError` naming the file and line number;
blank lines are skipped; a (query, document) pair given twice is an error. Files are UTF-8; a
byte-order mark at the start is skipped. Ids follow :mod:`embedlab.ids` (no NUL, no empty id).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from embedlab.dataset import Qrels
from embedlab.errors import InvalidInputError
from embedlab.ids import ID_DTYPE, as_ids, check_id, check_ids, id_problem
from embedlab.ranking import MISSING_SCORE, Ranking, check_ranking_size, trec_order

BEIR_HEADER = ("query-id", "corpus-id", "score")
#: What reading a damaged file raises: truncated gzip (EOFError), bad gzip header (OSError),
#: corrupted deflate data (zlib.error).
READ_ERRORS = (OSError, EOFError, zlib.error)
#: Grades are stored as int64.
GRADE_RANGE = (-(2**63), 2**63 - 1)


def _open(path: str | Path, mode: str) -> IO[str]:
    """A text handle: UTF-8 (a byte-order mark is skipped when reading), ``.gz`` transparently."""
    path = Path(path)
    encoding = "utf-8" if "w" in mode else "utf-8-sig"
    try:
        if path.suffix == ".gz":
            return gzip.open(path, mode + "t", encoding=encoding, newline="\n" if "w" in mode else None)
        return open(path, mode, encoding=encoding, newline="\n" if "w" in mode else None)
    except OSError as error:
        raise InvalidInputError(f"cannot open {path}: {error.strerror or error}") from None


def _lines(path: str | Path, sep: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line; a NUL byte is an error naming the line."""
    with _open(path, "r") as handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, 1):
                if "\x00" in line:
                    raise InvalidInputError(f"{path}:{lineno}: contains a NUL character")
                if line.strip():
                    yield lineno, line.rstrip("\r\n").split(sep) if sep else line.split()
        except UnicodeDecodeError as error:
            raise InvalidInputError(f"{path}:{lineno + 1}: not UTF-8 text ({error.reason})") from None
        except READ_ERRORS as error:
            raise InvalidInputError(f"cannot read {path} after line {lineno}: {error}") from None


def _grade(path: str | Path, lineno: int, text: str) -> int:
    try:
        grade = int(text)
    except ValueError:
        raise InvalidInputError(f"{path}:{lineno}: relevance grade {text[:40]!r} is not an integer") from None
    if not GRADE_RANGE[0] <= grade <= GRADE_RANGE[1]:
        raise InvalidInputError(f"{path}:{lineno}: relevance grade {text[:40]!r}... is out of range")
    return grade


def _add_judgment(qrels: dict[str, dict[str, int]], seen: dict[tuple[str, str], int], path: str | Path,
                  lineno: int, qid: str, doc: str, grade: int) -> None:
    first = seen.setdefault((qid, doc), lineno)
    if first != lineno:
        raise InvalidInputError(f"{path}:{lineno}: query {qid!r} judges document {doc!r} again "
                                f"(first at line {first})")
    qrels.setdefault(qid, {})[doc] = grade


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a TREC qrels file (``qid 0 docid grade``) into ``{qid: {docid: grade}}``."""
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    for lineno, fields in _lines(path):
        if len(fields) != 4:
            raise InvalidInputError(f"{path}:{lineno}: expected 4 fields 'qid iteration docid grade', "
                                    f"got {len(fields)}: {' '.join(fields)[:80]!r}")
        qid, _, doc, grade = fields
        _add_judgment(qrels, seen, path, lineno, qid, doc, _grade(path, lineno, grade))
    return qrels


def is_beir_header(fields: list[str]) -> bool:
    """Whether the fields of a qrels TSV's first line are the BEIR header (any case)."""
    return tuple(f.strip().lower() for f in fields) == BEIR_HEADER


def read_beir_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (header ``query-id corpus-id score``) into ``{qid: {docid: grade}}``."""
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    header = True
    for lineno, fields in _lines(path, sep="\t"):
        if header:
            if not is_beir_header(fields):
                raise InvalidInputError(f"{path}:{lineno}: a BEIR qrels file starts with the tab-separated "
                                        f"header {' '.join(BEIR_HEADER)!r}, got {' '.join(fields)[:80]!r}")
            header = False
            continue
        fields = [f.strip() for f in fields]
        if len(fields) != 3:
            raise InvalidInputError(f"{path}:{lineno}: expected 3 tab-separated fields "
                                    f"'query-id corpus-id score', got {len(fields)}")
        qid = check_id(fields[0], f"{path}:{lineno}", "query id")
        doc = check_id(fields[1], f"{path}:{lineno}", "document id")
        _add_judgment(qrels, seen, path, lineno, qid, doc, _grade(path, lineno, fields[2]))
    return qrels


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read TREC or BEIR qrels, telling them apart by the BEIR header line."""
    for _, fields in _lines(path, sep="\t"):
        return read_beir_qrels(path) if fields[0].strip().lower() == BEIR_HEADER[0] else read_qrels(path)
    return {}


def _check_ids(ids: np.ndarray, what: str) -> None:
    """Ids written into whitespace-separated files must be valid ids (:mod:`embedlab.ids`)."""
    try:
        check_ids(ids, what)
    except InvalidInputError as error:
        raise InvalidInputError(f"cannot write to a TREC file: {error}") from None


def write_qrels(qrels: Qrels, path: str | Path) -> None:
    """Write ``{qid: {docid: grade}}`` as a TREC qrels file (``qid 0 docid grade``)."""
    _check_ids([str(q) for q in qrels], "query")
    _check_ids([str(d) for judged in qrels.values() for d in judged], "document")
    with _open(path, "w") as handle:
        for qid, judged in qrels.items():
            handle.writelines(f"{qid} 0 {doc} {int(grade)}\n" for doc, grade in judged.items())


def _check_pairs(path: str | Path, lines: list[int], rows: np.ndarray, codes: np.ndarray,
                 qids: list[str], docs: list[str]) -> None:
    """Reject a document listed twice for one query, naming both lines."""
    by_pair = np.lexsort((np.asarray(lines, dtype=np.int64), codes, rows))
    same = (rows[by_pair][1:] == rows[by_pair][:-1]) & (codes[by_pair][1:] == codes[by_pair][:-1])
    if same.any():
        first, second = by_pair[np.argmax(same)], by_pair[np.argmax(same) + 1]
        raise InvalidInputError(f"{path}:{lines[second]}: query {qids[first]!r} retrieves document "
                                f"{docs[first]!r} again (first at line {lines[first]})")


def read_run(path: str | Path, k: int | None = None) -> Ranking:
    """Read a TREC run file into a :class:`~embedlab.Ranking` (queries in order of appearance),
    each query's documents in trec_eval's order; ``k`` keeps the first ``k`` of each (a run too
    deep to hold as a ``queries x deepest query`` matrix raises a clear error suggesting it)."""
    lines, qids, docs, scores = [], [], [], []
    for lineno, fields in _lines(path):
        if len(fields) != 6:
            raise InvalidInputError(f"{path}:{lineno}: expected 6 fields 'qid Q0 docid rank score tag', "
                                    f"got {len(fields)}: {' '.join(fields)[:80]!r}")
        try:
            score = float(fields[4])
        except ValueError:
            score = math.nan
        if math.isnan(score):
            raise InvalidInputError(f"{path}:{lineno}: score {fields[4][:40]!r} is not a number")
        lines.append(lineno)
        qids.append(fields[0])
        docs.append(fields[2])
        scores.append(score)
    row_of: dict[str, int] = {}
    rows = np.fromiter((row_of.setdefault(q, len(row_of)) for q in qids), np.int64, len(qids))
    code_of: dict[str, int] = {}
    codes = np.fromiter((code_of.setdefault(d, len(code_of)) for d in docs), np.int64, len(docs))
    _check_pairs(path, lines, rows, codes, qids, docs)
    values = np.asarray(scores, dtype=np.float64)
    kept = np.arange(rows.size) if k is None else _best_per_query(rows, codes, values, code_of, k)
    rows, values = rows[kept], values[kept]
    counts = np.bincount(rows, minlength=len(row_of))
    width = int(counts.max()) if counts.size else 0
    check_ranking_size(len(row_of), width, str(path), hint="read_run(path, k=...) keeps the best k per query")
    by_row = np.argsort(rows, kind="stable")
    column = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows[by_row]]
    doc_ids = np.full((len(row_of), width), "", dtype=ID_DTYPE)
    matrix = np.full((len(row_of), width), MISSING_SCORE)
    doc_ids[rows[by_row], column] = as_ids(docs)[kept[by_row]]
    matrix[rows[by_row], column] = values[by_row]
    query_ids = as_ids(list(row_of))
    order = trec_order(query_ids, doc_ids, matrix)
    return Ranking(query_ids, np.take_along_axis(doc_ids, order, axis=1), np.take_along_axis(matrix, order, axis=1))


def _best_per_query(rows: np.ndarray, codes: np.ndarray, values: np.ndarray, code_of: dict[str, int],
                    k: int) -> np.ndarray:
    """Lines holding each query's ``k`` best documents (trec_eval's order: score, then id, both
    descending)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInputError(f"read_run: k must be a positive integer, got {k!r}")
    rank = np.empty(len(code_of), np.int64)
    rank[[code_of[d] for d in sorted(code_of)]] = np.arange(len(code_of))
    order = np.lexsort((-rank[codes], -values, rows))
    counts = np.bincount(rows)
    position = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows[order]]
    return np.sort(order[position < k])


def write_run(ranking: Ranking, path: str | Path, tag: str = "embedlab") -> None:
    """Write ``ranking`` as a TREC run file, ranks numbered from 1 in row order; padding is skipped."""
    if id_problem(tag) is not None:
        raise InvalidInputError(f"run tag {tag!r} must be non-empty and contain no whitespace")
    _check_ids(ranking.query_ids, "query")
    _check_ids(ranking.doc_ids[ranking.doc_ids != ""], "document")
    with _open(path, "w") as handle:
        for qid, docs, scores in ranking:
            handle.writelines(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n"
                              for rank, (doc, score) in enumerate(zip(docs.tolist(), scores.tolist()), 1))
