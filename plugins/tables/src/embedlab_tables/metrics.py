"""AUC and log-loss of click predictions (numpy; checked against scikit-learn in the tests)."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from embedlab.errors import InvalidInputError

#: Probabilities are clipped to [EPS, 1 - EPS] in the log-loss, as scikit-learn's float64 eps.
EPS = 1e-7


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise InvalidInputError(f"{y.size} labels for {s.size} scores")
    if y.size == 0:
        raise InvalidInputError("no predictions to evaluate")
    if not np.all(np.isfinite(s)):
        raise InvalidInputError("predictions contain NaN or infinity")
    if np.any((y != 0) & (y != 1)):
        raise InvalidInputError("labels must be 0 or 1")
    return y, s


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    y, s = _check(labels, scores)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0:
        raise InvalidInputError("AUC needs both clicks and non-clicks")
    ranks = rankdata(s)
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean binary cross-entropy of click probabilities (clipped to ``[EPS, 1 - EPS]``)."""
    y, p = _check(labels, probabilities)
    if np.any((p < 0) | (p > 1)):
        raise InvalidInputError("log-loss needs probabilities in [0, 1]")
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))
