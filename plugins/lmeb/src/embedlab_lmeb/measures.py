"""LMEB's capped recall, ``R_cap@k = relevant in the top k / min(relevant, k)`` (``metric.py``)."""

from __future__ import annotations

import numpy as np

from embedlab.metrics.compute import JudgedRanking
from embedlab.metrics.measures import Measure, RelevanceConfig


class CappedRecall(Measure):
    """``Rcap@k``: recall whose denominator is capped at k, so a perfect top k scores 1 even when a
    query has more than k relevant documents (LMEB's ``R_cap_at_k``; queries with no relevant
    document score 0 here, where LMEB leaves them out of the mean)."""

    name = "Rcap"
    Config = RelevanceConfig
    cutoff_required = True

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        hits = judged.relevant(self.config.rel, self.cutoff).sum(axis=1)
        denominator = np.minimum(judged.num_relevant(self.config.rel), self.cutoff)
        return np.divide(hits, denominator, out=np.zeros(hits.shape), where=denominator > 0)
