"""The CUR algebra of ANNCUR: latent item embeddings from anchor-query scores."""

from __future__ import annotations

import numpy as np

from embedlab.errors import InvalidInputError


def cur_factors(rows: np.ndarray, anchor_items: np.ndarray, rcond: float = 1e-15) -> tuple[np.ndarray, np.ndarray]:
    """``U = pinv(R[:, I_a])`` (``k_i x k_q``) and item embeddings ``E = (U R)^T`` (``N x k_i``).

    ``rows`` is ``R``, the ``k_q x N`` exact scores of the anchor queries against every item;
    ``anchor_items`` holds the ``k_i`` anchor item positions ``I_a``. A new query's approximate
    score for item ``j`` is then ``c_q . E[j]`` with ``c_q`` its exact scores on the anchor items.
    Computed in float64.
    """
    scores = np.asarray(rows, dtype=np.float64)
    anchors = np.asarray(anchor_items, dtype=np.int64)
    if scores.ndim != 2 or not np.all(np.isfinite(scores)):
        raise InvalidInputError(f"anncur: anchor scores must be a finite 2-d matrix, got shape {scores.shape}")
    if anchors.ndim != 1 or anchors.size == 0 or anchors.min() < 0 or anchors.max() >= scores.shape[1]:
        raise InvalidInputError(f"anncur: anchor item positions must be a non-empty 1-d array in "
                                f"[0, {scores.shape[1]}), got {anchors!r}")
    intersection = np.linalg.pinv(scores[:, anchors], rcond=rcond)
    return intersection, np.ascontiguousarray((intersection @ scores).T)
