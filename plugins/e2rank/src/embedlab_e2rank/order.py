"""Unit vectors and the first stage's order of a ranking's candidates."""

from __future__ import annotations

import numpy as np

from embedlab.ranking import Ranking


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def by_first_stage_score(ranking: Ranking) -> Ranking:
    """Each row sorted by descending first-stage score (stable; padding last): the order the
    prompt takes its top documents in, whatever order the candidates were passed in."""
    scores = np.where(ranking.doc_ids != "", ranking.scores, -np.inf)
    order = np.argsort(-scores, axis=1, kind="stable")
    if np.array_equal(order, np.broadcast_to(np.arange(ranking.k), order.shape)):
        return ranking
    return Ranking(ranking.query_ids, np.take_along_axis(ranking.doc_ids, order, axis=1),
                   np.take_along_axis(scores, order, axis=1))
