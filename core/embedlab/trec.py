"""TREC run and qrels files, and BEIR qrels TSV files (plain or ``.gz``).

* Run: ``qid Q0 docid rank score tag`` per line, whitespace-separated. As trec_eval does, the
  ``Q0`` and ``rank`` columns are ignored on reading: documents are ordered by score, descending,
  ties by document id descending (trec_eval's order).
* TREC qrels: ``qid iteration docid grade``; the iteration column is ignored.
* BEIR qrels: a tab-separated file whose first line is the header ``query-id corpus-id score``.

Malformed lines raise :class:`~embedlab.errors.InvalidInputError` naming the file and line number;
blank lines are skipped; a (query, document) pair given twice is an error.
"""

from __future__ import annotations

import gzip
import math
import re
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from embedlab.dataset import Qrels
from embedlab.errors import InvalidInputError
from embedlab.ranking import MISSING_SCORE, Ranking

BEIR_HEADER = ("query-id", "corpus-id", "score")
_WHITESPACE = re.compile(r"\s")


def _open(path: str | Path, mode: str) -> IO[str]:
    path = Path(path)
    try:
        if path.suffix == ".gz":
            return gzip.open(path, mode + "t", encoding="utf-8", newline="\n" if "w" in mode else None)
        return open(path, mode, encoding="utf-8", newline="\n" if "w" in mode else None)
    except OSError as error:
        raise InvalidInputError(f"cannot open {path}: {error.strerror or error}") from None


def _lines(path: str | Path, sep: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of every non-blank line."""
    with _open(path, "r") as handle:
        lineno = 0
        try:
            for lineno, line in enumerate(handle, 1):
                if line.strip():
                    yield lineno, line.rstrip("\r\n").split(sep) if sep else line.split()
        except UnicodeDecodeError as error:
            raise InvalidInputError(f"{path}: not UTF-8 text after line {lineno} ({error.reason})") from None
        except (OSError, EOFError) as error:
            raise InvalidInputError(f"cannot read {path}: {error}") from None


def _grade(path: str | Path, lineno: int, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InvalidInputError(f"{path}:{lineno}: relevance grade {text!r} is not an integer") from None


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


def read_beir_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (header ``query-id corpus-id score``) into ``{qid: {docid: grade}}``."""
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    header = True
    for lineno, fields in _lines(path, sep="\t"):
        fields = [f.strip() for f in fields]
        if header:
            if tuple(fields) != BEIR_HEADER:
                raise InvalidInputError(f"{path}:{lineno}: a BEIR qrels file starts with the tab-separated "
                                        f"header {' '.join(BEIR_HEADER)!r}, got {' '.join(fields)[:80]!r}")
            header = False
            continue
        if len(fields) != 3 or not fields[0] or not fields[1]:
            raise InvalidInputError(f"{path}:{lineno}: expected 3 tab-separated fields "
                                    f"'query-id corpus-id score', got {fields!r}"[:200])
        _add_judgment(qrels, seen, path, lineno, fields[0], fields[1], _grade(path, lineno, fields[2]))
    return qrels


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read TREC or BEIR qrels, telling them apart by the BEIR header line."""
    with _open(path, "r") as handle:
        try:
            first = handle.readline()
        except (UnicodeDecodeError, OSError, EOFError) as error:
            raise InvalidInputError(f"cannot read {path}: {error}") from None
    return read_beir_qrels(path) if first.split()[:1] == [BEIR_HEADER[0]] else read_qrels(path)


def _check_ids(ids: np.ndarray, what: str) -> None:
    """Ids written into whitespace-separated files must be non-empty and free of whitespace."""
    if ids.size and (_WHITESPACE.search("\0".join(ids.tolist())) or np.any(ids == "")):
        bad = next(i for i in ids.tolist() if not i or _WHITESPACE.search(i))
        raise InvalidInputError(f"cannot write {what} id {bad!r} to a TREC file: ids must be non-empty "
                                "and contain no whitespace")


def write_qrels(qrels: Qrels, path: str | Path) -> None:
    """Write ``{qid: {docid: grade}}`` as a TREC qrels file (``qid 0 docid grade``)."""
    _check_ids(np.asarray([str(q) for q in qrels], dtype=str), "query")
    _check_ids(np.asarray([str(d) for judged in qrels.values() for d in judged], dtype=str), "document")
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


def read_run(path: str | Path) -> Ranking:
    """Read a TREC run file into a :class:`~embedlab.Ranking` (queries in order of appearance)."""
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
            raise InvalidInputError(f"{path}:{lineno}: score {fields[4]!r} is not a number")
        lines.append(lineno)
        qids.append(fields[0])
        docs.append(fields[2])
        scores.append(score)
    query_ids, first = np.unique(np.asarray(qids, dtype=str), return_index=True)
    query_ids = query_ids[np.argsort(first)]
    row_of = {q: i for i, q in enumerate(query_ids.tolist())}
    rows = np.asarray([row_of[q] for q in qids], dtype=np.int64)
    uniq, codes = np.unique(np.asarray(docs, dtype=str), return_inverse=True)
    codes = codes.ravel()
    values = np.asarray(scores, dtype=np.float64)

    _check_pairs(path, lines, rows, codes, qids, docs)

    order = np.lexsort((-codes, -values, rows))
    counts = np.bincount(rows, minlength=len(query_ids))
    column = np.arange(rows.size) - (np.cumsum(counts) - counts)[rows[order]]
    width = int(counts.max()) if counts.size else 0
    doc_ids = np.full((len(query_ids), width), "", dtype=uniq.dtype if uniq.size else str)
    matrix = np.full((len(query_ids), width), MISSING_SCORE)
    doc_ids[rows[order], column] = uniq[codes[order]]
    matrix[rows[order], column] = values[order]
    return Ranking(query_ids, doc_ids, matrix)


def write_run(ranking: Ranking, path: str | Path, tag: str = "embedlab") -> None:
    """Write ``ranking`` as a TREC run file, ranks numbered from 1 in row order; padding is skipped."""
    if not tag or _WHITESPACE.search(tag):
        raise InvalidInputError(f"run tag {tag!r} must be non-empty and contain no whitespace")
    _check_ids(ranking.query_ids, "query")
    _check_ids(ranking.doc_ids[ranking.doc_ids != ""], "document")
    with _open(path, "w") as handle:
        for qid, docs, scores in ranking:
            handle.writelines(f"{qid} Q0 {doc} {rank} {score!r} {tag}\n"
                              for rank, (doc, score) in enumerate(zip(docs.tolist(), scores.tolist()), 1))
