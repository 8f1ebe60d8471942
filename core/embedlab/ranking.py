"""Search results: positions from an index, and id-based rankings for evaluation."""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import attrs
import numpy as np

from embedlab.errors import InvalidInputError

#: Score given to padding slots when fewer than k documents were found.
MISSING_SCORE = -np.inf


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
    ``-inf`` pad rows that hold fewer than k documents.
    """

    query_ids: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=str))
    doc_ids: np.ndarray = attrs.field(converter=lambda a: np.asarray(a, dtype=str))
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
        doc_ids = np.asarray(doc_ids, dtype=str)
        found = result.indices >= 0
        ids = np.where(found, doc_ids[np.where(found, result.indices, 0)], "")
        return cls(np.asarray(query_ids, dtype=str), ids, np.where(found, result.scores, MISSING_SCORE))

    @classmethod
    def from_dict(cls, run: Mapping[str, Mapping[str, float]], k: int | None = None) -> Ranking:
        """Build from ``{query_id: {doc_id: score}}``, sorting each query by descending score."""
        width = k if k is not None else max((len(d) for d in run.values()), default=0)
        qids = list(run)
        doc_ids = np.full((len(qids), width), "", dtype=object)
        scores = np.full((len(qids), width), MISSING_SCORE)
        for row, qid in enumerate(qids):
            items = sorted(run[qid].items(), key=lambda kv: (-kv[1], kv[0]))[:width]
            for col, (doc, score) in enumerate(items):
                doc_ids[row, col], scores[row, col] = doc, score
        return cls(np.asarray(qids, dtype=str), doc_ids.astype(str), scores)

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
        return {qid: {str(d): float(s) for d, s in zip(docs, scores)} for qid, docs, scores in self}

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
                keep &= ~np.isin(self.doc_ids[i], np.asarray(banned, dtype=str))
            kept = np.flatnonzero(keep)[:width]
            doc_ids[i, :kept.size] = self.doc_ids[i, kept]
            scores[i, :kept.size] = self.scores[i, kept]
        return Ranking(self.query_ids, doc_ids, scores)

    def truncate(self, k: int) -> Ranking:
        """Keep the first ``k`` documents of every query."""
        return Ranking(self.query_ids, self.doc_ids[:, :k], self.scores[:, :k])
