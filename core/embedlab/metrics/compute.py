"""Vectorised evaluation arrays: a ranking joined with qrels, in the order trec_eval evaluates.

Conventions (checked against trec_eval through pytrec_eval-terrier in ``tests/test_metrics.py``):

* **Order.** trec_eval ignores the order and rank column of a run: it re-sorts every query's
  documents by score, descending, and breaks ties by document id, *descending* (``strcmp`` of the
  ids, i.e. code-point order; ``zz`` before ``d`` before ``c`` before ``a`` at equal scores).
  :func:`prepare` applies the same order, so a :class:`~embedlab.Ranking` is evaluated by its scores
  and ids, never by its column order.
* **Queries.** Rows are the queries of the qrels (every key of the mapping, even one without
  judgments), sorted. Queries of the ranking without qrels are ignored, as trec_eval ignores them.
  Queries in the qrels but absent from the ranking have no retrieved documents, so every built-in
  measure gives them 0 and they count in the mean (``trec_eval -c``). Queries whose judgments hold
  no relevant document are evaluated too and score 0, as trec_eval does.
* **Grades.** Unjudged documents count as grade 0. A document is relevant at level ``rel`` when its
  grade is ``>= rel`` (``rel >= 1``); gains for nDCG are ``max(grade, 0)`` (negative grades gain 0).
  ``JudgedRanking.judged`` tells a judged document (any grade, 0 included) from an unjudged one, for
  measures that treat them differently (Judged@k, bpref, condensed-list measures).
"""

from __future__ import annotations

from typing import Mapping

import attrs
import numpy as np

from embedlab.dataset import Qrels
from embedlab.errors import InvalidInputError
from embedlab.ids import as_ids
from embedlab.ranking import Ranking, trec_order

#: Fills the ideal-grade matrix after a query's last judgment: never relevant, gains 0.
PAD_GRADE = np.iinfo(np.int64).min


@attrs.frozen(eq=False)
class JudgedRanking:
    """A ranking joined with qrels, one row per qrels query, columns in trec_eval order."""

    query_ids: np.ndarray
    """``(n,)`` sorted query ids of the qrels."""
    grades: np.ndarray
    """``(n, depth)`` int64 grade of the document at each rank; 0 where unjudged or nothing retrieved."""
    retrieved: np.ndarray
    """``(n, depth)`` bool: a document was retrieved at this rank."""
    judged: np.ndarray
    """``(n, depth)`` bool: the document at this rank has a judgment in the qrels (any grade)."""
    ideal: np.ndarray
    """``(n, max_judged)`` int64 judged grades of each query, descending, padded with ``PAD_GRADE``."""

    def relevant(self, rel: int, cutoff: int | None = None) -> np.ndarray:
        """``(n, min(cutoff, depth))`` bool: relevant document at each rank."""
        return (self.grades[:, :cutoff] >= rel) & self.retrieved[:, :cutoff]

    def num_relevant(self, rel: int) -> np.ndarray:
        """``(n,)`` number of judged documents with grade ``>= rel``."""
        return (self.ideal >= rel).sum(axis=1)


def _flatten_qrels(qrels: Qrels) -> tuple[list[str], list[list[str]], list[np.ndarray]]:
    """Sorted query ids, and per query its judged document ids and their integer grades."""
    by_id = {str(q): judged for q, judged in qrels.items()}
    query_ids = sorted(by_id)
    docs = [[str(d) for d in by_id[qid]] for qid in query_ids]
    grades = _integer_grades([g for qid in query_ids for g in by_id[qid].values()])
    bounds = np.cumsum([0, *map(len, docs)])
    return query_ids, docs, [grades[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _integer_grades(grades: list) -> np.ndarray:
    """Grades as int64; integral floats are accepted, anything else is an error."""
    values = np.asarray(grades) if grades else np.zeros(0, dtype=np.int64)
    if values.dtype.kind in "iub":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
        if not bad.any():
            return values.astype(np.int64)
        example: object = values[bad][0].item()
    else:
        example = next((g for g in grades if not isinstance(g, (int, np.integer))), grades[0])
    raise InvalidInputError(f"qrels: relevance grades must be integers, got {example!r}")


def _ideal_matrix(grades: list[np.ndarray]) -> np.ndarray:
    """Each query's judged grades sorted descending, one row per query, padded with PAD_GRADE."""
    width = max((g.size for g in grades), default=0)
    ideal = np.full((len(grades), width), PAD_GRADE, dtype=np.int64)
    for row, values in enumerate(grades):
        ideal[row, :values.size] = -np.sort(-values)
    return ideal


def _ranking_rows(ranking: Ranking, query_ids: list[str]) -> np.ndarray:
    """Row of ``ranking`` holding each qrels query, -1 where the ranking lacks it."""
    ranked = ranking.query_ids.tolist()
    row_of = {qid: row for row, qid in enumerate(ranked)}
    if len(row_of) != len(ranked):
        unique, counts = np.unique(ranking.query_ids, return_counts=True)
        raise InvalidInputError(f"ranking: duplicate query id(s) {unique[counts > 1][:5].tolist()}; "
                                "each query must occupy one row")
    return np.asarray([row_of.get(qid, -1) for qid in query_ids], dtype=np.int64)


def _lookup_grades(docs: np.ndarray, judged: list[Mapping[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Grade of ``docs[i, j]`` under the judgments ``judged[i]`` (0 where unjudged or padding).

    A dictionary look-up per ranked document, and whether it is judged (numpy's
    ``searchsorted`` is not used: on variable-width strings longer than 15 bytes it returns wrong
    positions, numpy 2.4)."""
    grades = np.zeros(docs.shape, dtype=np.int64)
    judged_mask = np.zeros(docs.shape, dtype=bool)
    for row, (ranked, grade_of) in enumerate(zip(docs.tolist(), judged)):
        if grade_of:
            grades[row] = [grade_of.get(doc, 0) for doc in ranked]
            judged_mask[row] = [doc in grade_of for doc in ranked]
    padding = docs == ""
    grades[padding], judged_mask[padding] = 0, False
    return grades, judged_mask


def prepare(ranking: Ranking, qrels: Qrels) -> JudgedRanking:
    """Join ``ranking`` with ``qrels`` and order every row as trec_eval does (see module docstring)."""
    query_ids, judged_docs, judged_grades = _flatten_qrels(qrels)
    n = len(query_ids)
    rows = _ranking_rows(ranking, query_ids)
    present = np.flatnonzero(rows >= 0)
    docs = ranking.doc_ids[rows[present]]
    order = trec_order(as_ids(query_ids)[present], docs, ranking.scores[rows[present]])
    by_row = [dict(zip(judged_docs[i], judged_grades[i].tolist())) for i in present]
    found, is_judged = _lookup_grades(docs, by_row)
    grades = np.zeros((n, docs.shape[1]), dtype=np.int64)
    retrieved = np.zeros((n, docs.shape[1]), dtype=bool)
    judged = np.zeros((n, docs.shape[1]), dtype=bool)
    grades[present] = np.take_along_axis(found, order, axis=1)
    retrieved[present] = np.take_along_axis(docs != "", order, axis=1)
    judged[present] = np.take_along_axis(is_judged, order, axis=1)
    return JudgedRanking(as_ids(query_ids), grades, retrieved, judged, _ideal_matrix(judged_grades))


def precision(judged: JudgedRanking, cutoff: int, rel: int) -> np.ndarray:
    """trec_eval ``P_k``: relevant documents in the top ``cutoff``, divided by ``cutoff``."""
    return judged.relevant(rel, cutoff).sum(axis=1) / cutoff


def _per_relevant(numerator: np.ndarray, judged: JudgedRanking, rel: int) -> np.ndarray:
    num_rel = judged.num_relevant(rel)
    return np.divide(numerator, num_rel, out=np.zeros(num_rel.shape), where=num_rel > 0)


def recall(judged: JudgedRanking, cutoff: int | None, rel: int) -> np.ndarray:
    """trec_eval ``recall_k``: relevant documents in the top ``cutoff`` over all relevant ones."""
    return _per_relevant(judged.relevant(rel, cutoff).sum(axis=1), judged, rel)


def success(judged: JudgedRanking, cutoff: int | None, rel: int) -> np.ndarray:
    """trec_eval ``success_k``: 1 when a relevant document is in the top ``cutoff``."""
    return judged.relevant(rel, cutoff).any(axis=1).astype(np.float64)


def reciprocal_rank(judged: JudgedRanking, cutoff: int | None, rel: int) -> np.ndarray:
    """trec_eval ``recip_rank`` over the top ``cutoff``: 1 / rank of the first relevant document."""
    relevant = judged.relevant(rel, cutoff)
    if relevant.shape[1] == 0:
        return np.zeros(relevant.shape[0])
    first = np.argmax(relevant, axis=1) + 1
    return np.where(relevant.any(axis=1), 1.0 / first, 0.0)


def average_precision(judged: JudgedRanking, cutoff: int | None, rel: int) -> np.ndarray:
    """trec_eval ``map`` / ``map_cut_k``: precision at each relevant rank, summed, over all relevant."""
    relevant = judged.relevant(rel, cutoff)
    ranks = np.arange(1, relevant.shape[1] + 1)
    precision_at = np.cumsum(relevant, axis=1) / ranks
    return _per_relevant(np.where(relevant, precision_at, 0.0).sum(axis=1), judged, rel)


def _dcg(gains: np.ndarray) -> np.ndarray:
    discounts = 1.0 / np.log2(np.arange(2, gains.shape[1] + 2))
    return (np.maximum(gains, 0) * discounts).sum(axis=1)


def ndcg(judged: JudgedRanking, cutoff: int | None) -> np.ndarray:
    """trec_eval ``ndcg`` / ``ndcg_cut_k``: gain = grade, discount 1/log2(rank + 1), ideal from qrels."""
    dcg = _dcg(np.where(judged.retrieved[:, :cutoff], judged.grades[:, :cutoff], 0))
    ideal = _dcg(judged.ideal[:, :cutoff])
    return np.divide(dcg, ideal, out=np.zeros(dcg.shape), where=ideal > 0)
