"""Margins of query/document embeddings against a relevance matrix (Bangachev et al., 2026).

* **row margin** of query j: ``(min_{i relevant} <U_j, V_i> - max_{i not relevant} <U_j, V_i>) / 2``,
  the half-gap its ranking has between relevant and other documents; every query ranks all its
  relevant documents first exactly when the smallest row margin is positive (the authors'
  ``compute_margin`` diagnostic, and LIMIT's 100% top-k accuracy).
* **retrieval margin** m^rd (the paper's definition, one threshold at zero for every query):
  the largest m with ``<U_j, V_i> >= m`` for relevant pairs and ``<= -m`` for the others, i.e.
  ``min_{j,i} sign_ji <U_j, V_i>`` with sign +1 for relevant and -1 for other pairs (negative when no
  such m > 0 exists).

Both assume unit-norm rows, as the definitions do.
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


@attrs.frozen
class MarginReport:
    """Margin summary of one embedding set."""

    min_row_margin: float
    mean_row_margin: float
    retrieval_margin: float

    @property
    def separable(self) -> bool:
        """Every query ranks all its relevant documents above all others."""
        return self.min_row_margin > 0


def margin_report(queries: object, documents: object, relevance: object) -> MarginReport:
    """Smallest and mean row margin (over queries with finite margins) and the retrieval margin."""
    rows = row_margins(queries, documents, relevance)
    finite = rows[np.isfinite(rows)]
    if finite.size == 0:
        raise InvalidInputError("no query has both relevant and other documents: margins are undefined")
    return MarginReport(float(finite.min()), float(finite.mean()), retrieval_margin(queries, documents, relevance))
