"""Set measures of a thresholded ranking: every retrieved document counts, not the top k.

``SetP`` (precision of the result set), ``SetR`` (recall), ``SetF1`` and ``SetSize`` (number of
documents kept), averaged over the qrels queries like the built-in measures (queries missing from
the ranking count as empty sets). An empty result set has precision 0 (and F1 0): a filter that
drops everything is never rewarded. An optional ``@k`` looks at the first k documents only.
"""

from __future__ import annotations

import numpy as np

from embedlab.metrics.compute import JudgedRanking
from embedlab.metrics.measures import Measure, RelevanceConfig


def _counts(judged: JudgedRanking, cutoff: int | None, rel: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: documents kept, relevant documents kept, relevant documents judged."""
    size = judged.retrieved[:, :cutoff].sum(axis=1)
    hits = judged.relevant(rel, cutoff).sum(axis=1)
    return size, hits, judged.num_relevant(rel)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros(numerator.shape, dtype=np.float64),
                     where=denominator > 0)


def set_precision(size: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Relevant kept / kept (0 for an empty set)."""
    return _ratio(hits.astype(np.float64), size)


def set_recall(hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Relevant kept / relevant judged (0 without relevant judgments, as trec_eval)."""
    return _ratio(hits.astype(np.float64), n_relevant)


def set_f1(size: np.ndarray, hits: np.ndarray, n_relevant: np.ndarray) -> np.ndarray:
    """Harmonic mean of set precision and recall: ``2 hits / (size + relevant)``."""
    return _ratio(2.0 * hits, size + n_relevant)


class SetPrecision(Measure):
    """Share of the retrieved set that is relevant (0 for an empty set)."""

    name = "SetP"
    Config = RelevanceConfig

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        size, hits, _ = _counts(judged, self.cutoff, self.config.rel)
        return set_precision(size, hits)


class SetRecall(Measure):
    """Share of the relevant documents that the retrieved set holds."""

    name = "SetR"
    Config = RelevanceConfig

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        _, hits, n_relevant = _counts(judged, self.cutoff, self.config.rel)
        return set_recall(hits, n_relevant)


class SetF1(Measure):
    """Harmonic mean of SetP and SetR."""

    name = "SetF1"
    Config = RelevanceConfig

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return set_f1(*_counts(judged, self.cutoff, self.config.rel))


class SetSize(Measure):
    """Number of documents retrieved (the result-set size)."""

    name = "SetSize"

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return judged.retrieved[:, :self.cutoff].sum(axis=1).astype(np.float64)


SET_MEASURES = (SetPrecision, SetRecall, SetF1, SetSize)
