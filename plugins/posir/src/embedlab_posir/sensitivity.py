"""PosIR's position-sensitivity analysis (code ``Ziyang1060/PosIR``, ``ndcg_PSI_analysis.py``) of per-query
scores against the relative position of each query's reference span in its relevant document.

* ``relpos = clip(((start + end) / 2) / document length, 0, 1)``;
* equal-width position bins over ``[0, 1]`` (PosIR: 20); the mean score per bin;
* **PSI** (position sensitivity index) ``= 1 - min(bin means) / max(bin means)`` over non-empty
  bins: 0 is position-robust, 1 means some position is never found (NaN when nothing is found);
* a least-squares line ``score ~ relpos``: a negative slope is a primacy bias, positive a recency
  bias; with R² and Spearman's rho.
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy import stats

from embedlab.errors import InvalidInputError


@attrs.frozen(eq=False)
class PositionCurve:
    """Mean score per position bin and the summary statistics (see the module docstring)."""

    edges: np.ndarray
    means: np.ndarray
    counts: np.ndarray
    psi: float
    slope: float
    intercept: float
    r2: float
    spearman: float
    mean: float

    def to_json(self) -> dict:
        return {"edges": self.edges.tolist(), "means": [None if np.isnan(m) else float(m) for m in self.means],
                "counts": self.counts.tolist(), "psi": self.psi, "slope": self.slope,
                "intercept": self.intercept, "r2": self.r2, "spearman": self.spearman, "mean": self.mean}


def relative_positions(start: np.ndarray, end: np.ndarray, length: np.ndarray) -> np.ndarray:
    """PosIR's ``relpos`` of character spans ``[start, end)`` in texts of ``length`` characters."""
    start, end, length = (np.asarray(a, dtype=np.float64) for a in (start, end, length))
    return np.clip((start + end) / 2 / np.maximum(length, 1), 0.0, 1.0)


def position_curve(scores: np.ndarray, relpos: np.ndarray, bins: int = 20) -> PositionCurve:
    """The position curve and PSI of per-query ``scores`` (e.g. nDCG@10) at positions ``relpos``."""
    scores, relpos = np.asarray(scores, dtype=np.float64), np.asarray(relpos, dtype=np.float64)
    if scores.shape != relpos.shape or scores.ndim != 1 or scores.size < 2:
        raise InvalidInputError(f"position_curve: scores and relpos must be 1-D of one length >= 2, got "
                                f"{scores.shape} and {relpos.shape}")
    if not (np.isfinite(scores).all() and np.isfinite(relpos).all()):
        raise InvalidInputError("position_curve: scores and relpos must be finite")
    if (relpos < 0).any() or (relpos > 1).any():
        raise InvalidInputError("position_curve: relpos must lie in [0, 1]")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InvalidInputError(f"position_curve: bins must be an integer >= 1, got {bins!r}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.minimum((relpos * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=scores, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    filled = means[counts > 0]
    best = float(filled.max())
    psi = 1.0 - float(filled.min()) / best if best > 0 else float("nan")  # nothing found anywhere
    if np.ptp(relpos) > 0:
        fit = stats.linregress(relpos, scores)
        slope, intercept, r2 = float(fit.slope), float(fit.intercept), float(fit.rvalue ** 2)
        rho = float(stats.spearmanr(relpos, scores).statistic) if np.ptp(scores) > 0 else 0.0
    else:
        slope, intercept, r2, rho = 0.0, float(scores.mean()), 0.0, 0.0
    return PositionCurve(edges, means, counts, psi, slope, intercept, r2, rho, float(scores.mean()))
