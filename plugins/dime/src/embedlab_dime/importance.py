"""DIME's dimension importance estimators and the query mask, as pure numpy functions.

Every estimator returns one importance score per embedding dimension; the mask keeps the query's
``ceil(alpha * D)`` most important dimensions and zeroes the rest. Documents are never touched.
"""

from __future__ import annotations

import math

import numpy as np

from embedlab.errors import InvalidInputError


def check_keep_fraction(alpha: float) -> float:
    """``alpha`` as a float in (0, 1]; anything else raises ``InvalidInputError``."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
        raise InvalidInputError(f"keep_fraction must be a number in (0, 1], got {alpha!r}; "
                                "1.0 keeps every dimension, 0.1 the top tenth")
    return float(alpha)


def keep_count(dim: int, alpha: float) -> int:
    """Number of dimensions kept: ``ceil(alpha * dim)`` (at least 1)."""
    return max(1, math.ceil(check_keep_fraction(alpha) * dim - 1e-9))


def prf_importance(queries: np.ndarray, feedback: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """PRF-DIME (the research code's ``TopkFilter``): ``q * mean(top-k document vectors)``.

    ``queries`` ``(n, D)``, ``feedback`` ``(n, k, D)``; ``valid`` ``(n, k)`` marks real documents
    (padding is left out of the mean; a query without any feedback document gets zeros).
    """
    if valid is None:
        valid = np.ones(feedback.shape[:2], dtype=bool)
    counts = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    centroid = np.einsum("nk,nkd->nd", valid.astype(feedback.dtype), feedback) / counts
    return queries * centroid


def oracle_importance(query: np.ndarray, documents: np.ndarray, labels: np.ndarray, owner: str = "dime",
                      query_id: str = "") -> np.ndarray:
    """Oracle DIME (``OracularFilter``): per dimension j, Pearson correlation over the judged
    documents between their labels and ``q_j * d_j``. A dimension whose interaction does not vary
    gets 0. Labels that do not vary make the oracle undefined: ``InvalidInputError``."""
    labels = np.asarray(labels, dtype=np.float64)
    if labels.size < 2 or np.ptp(labels) == 0:
        raise InvalidInputError(f"{owner}: query {query_id!r} has {labels.size} labelled document(s), all "
                                f"graded {labels[:1].tolist()}; the oracle needs at least two different "
                                "grades (judge some non-relevant documents or rerank deeper)")
    interaction = documents.astype(np.float64) * query.astype(np.float64)
    x = interaction - interaction.mean(axis=0)
    y = labels - labels.mean()
    denominator = np.linalg.norm(x, axis=0) * np.linalg.norm(y)
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denominator > 0, (y @ x) / denominator, 0.0)
    return corr.astype(np.float32)


def top_mask(importance: np.ndarray, alpha: float) -> np.ndarray:
    """Boolean ``(n, D)`` mask of each row's ``ceil(alpha * D)`` largest importances (ties: the
    lower dimension first)."""
    importance = np.atleast_2d(importance)
    kept = keep_count(importance.shape[1], alpha)
    mask = np.zeros(importance.shape, dtype=bool)
    if kept == importance.shape[1]:
        mask[:] = True
        return mask
    order = np.argsort(-importance, axis=1, kind="stable")[:, :kept]
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def masked_scores(queries: np.ndarray, mask: np.ndarray, documents: np.ndarray) -> np.ndarray:
    """Inner products ``<q * mask, d>`` of each query with its ``(n, k, D)`` candidates."""
    return np.einsum("nd,nkd->nk", np.where(mask, queries, np.float32(0)), documents)
