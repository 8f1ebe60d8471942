"""Cutting rankings into result sets: a score threshold, a top-K cutoff, and choosing either on
judged queries (for the best mean set F1, or the largest cut that keeps a target mean recall).

The Cosine Adapter's global threshold, the plain global cosine threshold and the top-K cutoff all
go through :func:`cut` and :func:`choose_threshold`, so the three are tuned and measured the same way.
"""

from __future__ import annotations

import attrs
import numpy as np

from embedlab.dataset import Qrels
from embedlab.errors import InvalidInputError
from embedlab.ranking import MISSING_SCORE, Ranking
from embedlab_cosine_adapter.measures import set_f1, set_precision, set_recall

#: Most distinct thresholds a sweep tries (quantiles of the scores beyond that).
MAX_THRESHOLDS = 4096


def cut(ranking: Ranking, keep: np.ndarray) -> Ranking:
    """The ranking with the documents where ``keep`` is False removed (``""`` / ``-inf``), same shape."""
    keep = np.asarray(keep, dtype=bool) & (ranking.doc_ids != "")
    return Ranking(ranking.query_ids, np.where(keep, ranking.doc_ids, ""),
                   np.where(keep, ranking.scores, MISSING_SCORE))


def cosine_threshold(ranking: Ranking, threshold: float) -> Ranking:
    """Baseline: keep the documents whose (raw cosine) score is ``>= threshold``."""
    return cut(ranking, ranking.scores >= threshold)


def top_k_cutoff(ranking: Ranking, k: int) -> Ranking:
    """Baseline: keep the first ``k`` documents of every query."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InvalidInputError(f"top-K cutoff: k must be an integer >= 0, got {k!r}")
    return cut(ranking, np.broadcast_to(np.arange(ranking.k) < k, ranking.doc_ids.shape))


@attrs.frozen(eq=False)
class Judgments:
    """Binary relevance of every ranked document and each ranked query's number of relevant documents."""

    labels: np.ndarray  # (n, k) bool
    n_relevant: np.ndarray  # (n,) int


def judge(ranking: Ranking, qrels: Qrels, rel: int = 1) -> Judgments:
    """Relevance (grade ``>= rel``) of every document of ``ranking``; queries without qrels have none."""
    rows = [qrels.get(str(q), {}) for q in ranking.query_ids.tolist()]
    labels = np.array([[judged.get(d, 0) >= rel for d in docs] for judged, docs
                       in zip(rows, ranking.doc_ids.tolist())], dtype=bool).reshape(ranking.doc_ids.shape)
    n_relevant = np.array([sum(g >= rel for g in judged.values()) for judged in rows], dtype=np.int64)
    return Judgments(labels & (ranking.doc_ids != ""), n_relevant)


@attrs.frozen(eq=False)
class Sweep:
    """Mean set measures over queries for each threshold (``thresholds`` ascending); ``pooled``:
    relevant kept / kept over all queries together (micro precision, no empty-set convention)."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    size: np.ndarray
    pooled: np.ndarray


def sweep(scores: np.ndarray, judgments: Judgments, thresholds: np.ndarray | None = None) -> Sweep:
    """Keep ``scores >= t`` for every threshold ``t`` (by default the distinct finite scores, at most
    :data:`MAX_THRESHOLDS` quantiles of them) and average the set measures over the rows."""
    scores = np.asarray(scores, dtype=np.float64)
    if thresholds is None:
        finite = np.unique(scores[np.isfinite(scores)])
        if finite.size > MAX_THRESHOLDS:
            finite = np.unique(np.quantile(finite, np.linspace(0, 1, MAX_THRESHOLDS), method="nearest"))
        thresholds = finite
    thresholds = np.sort(np.asarray(thresholds, dtype=np.float64))
    measures = np.zeros((5, thresholds.size))
    for i, t in enumerate(thresholds):
        keep = scores >= t
        size, hits = keep.sum(axis=1), (keep & judgments.labels).sum(axis=1)
        measures[:, i] = (set_precision(size, hits).mean(), set_recall(hits, judgments.n_relevant).mean(),
                          set_f1(size, hits, judgments.n_relevant).mean(), size.mean(),
                          hits.sum() / max(int(size.sum()), 1))
    return Sweep(thresholds, *measures)


def choose_threshold(scores: np.ndarray, judgments: Judgments, target_recall: float | None = None) -> float:
    """The threshold with the best mean set F1 (``target_recall`` None; ties: the higher threshold),
    or the highest threshold whose mean recall is still ``>= target_recall`` (the lowest score if
    none reaches it)."""
    result = sweep(scores, judgments)
    if result.thresholds.size == 0:
        raise InvalidInputError("cannot choose a threshold: the ranking holds no scored document")
    if target_recall is None:
        best = np.flatnonzero(result.f1 == result.f1.max())[-1]
        return float(result.thresholds[best])
    reached = np.flatnonzero(result.recall >= target_recall)
    return float(result.thresholds[reached[-1] if reached.size else 0])


def rank_scores(ranking: Ranking) -> np.ndarray:
    """``-rank`` (0, -1, -2...; ``-inf`` for padding): a top-K cutoff is the threshold ``1 - K``."""
    ranks = -np.broadcast_to(np.arange(ranking.k, dtype=np.float64), ranking.doc_ids.shape)
    return np.where(ranking.doc_ids != "", ranks, -np.inf)
