"""Search results: positions from an index, and id-based rankings for evaluation."""

from __future__ import annotations

import os
from typing import Iterator, Mapping, Sequence

import attrs
import numpy as np

from embedlab.errors import InvalidInputError
from embedlab.ids import as_ids, check_ids

#: Score given to padding slots when fewer than k documents were found.
MISSING_SCORE = -np.inf
#: Bytes per cell of a ranking: a 16-byte id slot (longer ids add their length) and a float64.
CELL_BYTES = 24


def memory_bytes() -> int:
    """Physical memory of this machine (16 GiB where the platform does not say)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return 16 * 2**30


def check_ranking_size(n_queries: int, k: int, what: str, hint: str = "") -> None:
    """:class:`InvalidInputError` when a ``(n_queries, k)`` ranking would need more than half the
    machine's memory (instead of a MemoryError, or swapping, later)."""
    needed = n_queries * k * CELL_BYTES
    available = memory_bytes()
    if needed > available // 2:
        raise InvalidInputError(f"{what}: a ranking of {n_queries:,} queries x {k:,} documents needs "
                                f"{needed / 2**30:,.1f} GiB, more than half of this machine's "
                                f"{available / 2**30:,.1f} GiB" + (f"; {hint}" if hint else ""))


def _as_scores(a: object) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


@attrs.frozen(eq=False)
class SearchResult:
    """What ``Index.search`` returns: ``(n_queries, k)`` scores and document positions.

    Higher scores are better (distances are negated). Rows are sorted by descending score.
    Slots with no document hold position ``-1`` and score ``-inf``.
    """

    scores: np.ndarray = attrs.field(converter=_as_scores)
    indices: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.int64))

    def __attrs_post_init__(self) -> None:
        if self.scores.shape != self.indices.shape or self.scores.ndim != 2:
            raise InvalidInputError(f"search result: scores {self.scores.shape} and indices "
                                    f"{self.indices.shape} must be equal 2-d shapes")

    @property
    def k(self) -> int:
        return int(self.scores.shape[1])

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @classmethod
    def empty(cls, n_queries: int, k: int) -> SearchResult:
        return cls(np.full((n_queries, k), MISSING_SCORE), np.full((n_queries, k), -1))


@attrs.frozen(eq=False)
class Ranking:
    """Top-k documents per query as numpy arrays (no DataFrames).

    ``doc_ids[i, j]`` is the j-th best document for ``query_ids[i]``; empty-string ids with score
    ``-inf`` pad rows that hold fewer than k documents. Ids are held as variable-width strings
    (:data:`embedlab.ids.ID_DTYPE`), so memory follows the ids, not the longest one.
    """

    query_ids: np.ndarray = attrs.field(converter=as_ids)
    doc_ids: np.ndarray = attrs.field(converter=as_ids)
    scores: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.float64))

    def __attrs_post_init__(self) -> None:
        n = self.query_ids.shape[0] if self.query_ids.ndim == 1 else -1
        if n < 0 or self.doc_ids.ndim != 2 or self.doc_ids.shape != self.scores.shape \
                or self.doc_ids.shape[0] != n:
            raise InvalidInputError(f"ranking: query_ids {self.query_ids.shape}, doc_ids "
                                    f"{self.doc_ids.shape} and scores {self.scores.shape} disagree")

    @classmethod
    def from_search(cls, query_ids: Sequence[str], result: SearchResult,
                    doc_ids: np.ndarray) -> Ranking:
        """Translate index positions into document ids."""
        doc_ids = as_ids(doc_ids)
        found = result.indices >= 0
        ids = np.where(found, doc_ids[np.where(found, result.indices, 0)], "")
        return cls(as_ids(query_ids), ids, np.where(found, result.scores, MISSING_SCORE))

    @classmethod
    def from_dict(cls, run: Mapping[str, Mapping[str, float]], k: int | None = None) -> Ranking:
        """Build from ``{query_id: {doc_id: score}}``, sorting each query by descending score
        (the first ``k`` of each: no wider than the longest query). Ids are checked
        (:func:`embedlab.ids.check_ids`): an empty document id would become padding."""
        check_ids(as_ids(list(run)), "query")
        check_ids(as_ids([doc for docs in run.values() for doc in docs]), "document")
        longest = max((len(d) for d in run.values()), default=0)
        width = longest if k is None else min(int(k), longest)
        qids = list(run)
        doc_ids = np.full((len(qids), width), "", dtype=object)
        scores = np.full((len(qids), width), MISSING_SCORE)
        for row, qid in enumerate(qids):
            items = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))[:width]
            for col, (doc, score) in enumerate(items):
                doc_ids[row, col], scores[row, col] = doc, score
        return cls(as_ids(qids), as_ids(doc_ids), scores)

    @property
    def k(self) -> int:
        return int(self.doc_ids.shape[1])

    def __len__(self) -> int:
        return int(self.query_ids.shape[0])

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Document ids and scores of query ``i``, without padding."""
        keep = self.doc_ids[i] != ""
        return self.doc_ids[i][keep], self.scores[i][keep]

    def __iter__(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        for i, qid in enumerate(self.query_ids):
            yield (str(qid), *self.row(i))

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{query_id: {doc_id: score}}`` (the shape pytrec_eval takes)."""
        return {qid: dict(zip(docs.tolist(), scores.tolist())) for qid, docs, scores in self}

    def without(self, exclude: Mapping[str, Sequence[str]], k: int | None = None) -> Ranking:
        """Drop each query's excluded documents (``{query_id: doc_ids}``), keep the order of the
        others and the first ``k`` of them (default: this ranking's depth), padding short rows."""
        width = self.k if k is None else k
        doc_ids = np.full((len(self), width), "", dtype=self.doc_ids.dtype)
        scores = np.full((len(self), width), MISSING_SCORE)
        for i, qid in enumerate(self.query_ids.tolist()):
            keep = self.doc_ids[i] != ""
            banned = exclude.get(qid)
            if banned:
                keep &= ~np.isin(self.doc_ids[i], as_ids(list(banned)))
            kept = np.flatnonzero(keep)[:width]
            doc_ids[i, :kept.size] = self.doc_ids[i, kept]
            scores[i, :kept.size] = self.scores[i, kept]
        return Ranking(self.query_ids, doc_ids, scores)

    def truncate(self, k: int) -> Ranking:
        """Keep the first ``k`` documents of every query."""
        return Ranking(self.query_ids, self.doc_ids[:, :k], self.scores[:, :k])


def trec_order(query_ids: np.ndarray, doc_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Column order of every row as trec_eval ranks it: score descending, then document id
    descending (code-point order, as ``strcmp`` on UTF-8), padding last.

    One string sort per row (ids descending), then a stable numeric sort by score. NaN scores and
    documents listed twice in a row raise :class:`InvalidInputError` naming the query.
    """
    pad = doc_ids == ""
    nan = np.isnan(scores) & ~pad
    if nan.any():
        row = int(np.argwhere(nan)[0, 0])
        raise InvalidInputError(f"ranking: query {str(query_ids[row])!r} has NaN scores; "
                                "scores must be numbers")
    by_doc = np.argsort(doc_ids, axis=1, kind="stable")[:, ::-1]
    sorted_ids = np.take_along_axis(doc_ids, by_doc, axis=1)
    dup = (sorted_ids[:, 1:] == sorted_ids[:, :-1]) & (sorted_ids[:, 1:] != "")
    if dup.any():
        row, col = np.argwhere(dup)[0]
        raise InvalidInputError(f"ranking: query {str(query_ids[row])!r} retrieves document "
                                f"{str(sorted_ids[row, col])!r} more than once")
    keys = np.take_along_axis(np.where(pad, np.inf, -scores), by_doc, axis=1)
    return np.take_along_axis(by_doc, np.argsort(keys, axis=1, kind="stable"), axis=1)
