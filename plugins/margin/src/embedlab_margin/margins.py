"""Margins of query/document embeddings against a relevance matrix (Bangachev et al., 2026).

* **row margin** of query j: ``(min_{i relevant} <U_j, V_i> - max_{i not relevant} <U_j, V_i>) / 2``,
  the half-gap its ranking has between relevant and other documents; every query ranks all its
  relevant documents first exactly when the smallest row margin is positive (the authors'
  ``compute_margin`` diagnostic, and LIMIT's 100% top-k accuracy).
* **global-threshold margin**: one threshold ``b`` shared by every query, placed best:
  ``(min over relevant pairs - max over other pairs) / 2``, at ``b`` = their midpoint. Positive
  exactly when one score threshold separates all relevant from all other pairs.
* **retrieval margin** m^rd (the paper's definition, one threshold at zero for every query):
  the largest m with ``<U_j, V_i> >= m`` for relevant pairs and ``<= -m`` for the others, i.e.
  ``min_{j,i} sign_ji <U_j, V_i>`` with sign +1 for relevant and -1 for other pairs (negative when no
  such m > 0 exists).

row margin >= global-threshold margin >= m^rd for the same vectors. A positive global-threshold
margin ``m`` at threshold ``b`` in dimension d gives a positive m^rd in dimension d + 1: append
``-b`` to every query and ``1`` to every document and renormalise; every score becomes
``(s - b) / sqrt(2 (1 + b^2))`` (:func:`lift_threshold`).

All assume unit-norm rows, as the definitions do.
"""

from __future__ import annotations

import attrs
import numpy as np
import torch
from embedlab_limit.evaluation import row_margins as _batched_row_margins

from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError


def _inputs(queries: object, documents: object, relevance: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q = as_dense(queries, name="queries")
    d = as_dense(documents, dim=q.shape[1], name="documents")
    rel = np.asarray(relevance, dtype=bool)
    if rel.shape != (q.shape[0], d.shape[0]):
        raise InvalidInputError(f"relevance has shape {rel.shape}; expected (queries, documents) = "
                                f"{(q.shape[0], d.shape[0])}")
    return q, d, rel


def row_margins(queries: object, documents: object, relevance: object) -> np.ndarray:
    """Half-gap between the lowest relevant and highest other score, per query (``+inf`` for a query
    without relevant or without other documents)."""
    q, d, rel = _inputs(queries, documents, relevance)
    scores = torch.from_numpy(q @ d.T)[None]
    relevant = torch.from_numpy(rel)[None]
    margins = _batched_row_margins(scores, relevant, torch.ones_like(relevant))
    return margins[0].numpy().astype(np.float64)


def retrieval_margin(queries: object, documents: object, relevance: object) -> float:
    """The paper's m^rd of these embeddings: ``min sign * score`` over all pairs (zero threshold)."""
    q, d, rel = _inputs(queries, documents, relevance)
    signed = np.where(rel, 1.0, -1.0) * (q.astype(np.float64) @ d.astype(np.float64).T)
    return float(signed.min())


def global_threshold_margin(queries: object, documents: object, relevance: object) -> tuple[float, float]:
    """(margin, threshold) with one threshold for every query, placed midway between the lowest
    relevant and the highest other score."""
    q, d, rel = _inputs(queries, documents, relevance)
    scores = q.astype(np.float64) @ d.astype(np.float64).T
    if rel.all() or not rel.any():
        raise InvalidInputError("the relevance matrix needs relevant and other pairs")
    lowest, highest = float(scores[rel].min()), float(scores[~rel].max())
    return (lowest - highest) / 2, (lowest + highest) / 2


def lift_threshold(queries: object, documents: object, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors in one more dimension whose scores are ``(s - threshold) / sqrt(2 (1 + threshold^2))``:
    a shared threshold turned into the zero threshold of the retrieval margin."""
    q = as_dense(queries, name="queries").astype(np.float64)
    d = as_dense(documents, dim=q.shape[1], name="documents").astype(np.float64)
    lifted_q = np.hstack([q, np.full((len(q), 1), -threshold)]) / np.sqrt(1 + threshold**2)
    lifted_d = np.hstack([d, np.ones((len(d), 1))]) / np.sqrt(2)
    return lifted_q, lifted_d


@attrs.frozen
class MarginReport:
    """Margin summary of one embedding set."""

    min_row_margin: float
    mean_row_margin: float
    retrieval_margin: float
    global_margin: float
    global_threshold: float

    @property
    def separable(self) -> bool:
        """Every query ranks all its relevant documents above all others."""
        return self.min_row_margin > 0


def margin_report(queries: object, documents: object, relevance: object) -> MarginReport:
    """Smallest and mean row margin (over queries with finite margins), the global-threshold margin
    and its threshold, and the retrieval margin."""
    rows = row_margins(queries, documents, relevance)
    finite = rows[np.isfinite(rows)]
    if finite.size == 0:
        raise InvalidInputError("no query has both relevant and other documents: margins are undefined")
    shared, threshold = global_threshold_margin(queries, documents, relevance)
    return MarginReport(float(finite.min()), float(finite.mean()), retrieval_margin(queries, documents, relevance),
                        shared, threshold)
