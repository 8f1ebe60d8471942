"""Paired significance tests of systems against a baseline, over per-query metric values.

* :func:`paired_tests`: one system vs the baseline: paired t-test (``scipy.stats.ttest_rel``), Wilcoxon
  signed-rank (``scipy.stats.wilcoxon``, its defaults: zero differences dropped, exact p-values for
  small samples), and counts of queries improved / degraded / tied.
* :func:`compare_systems`: several systems vs one baseline, p-values Holm(-Bonferroni)-adjusted
  across the systems (:func:`holm`), per test.

Differences within ``tie_tolerance`` (default 1e-12) count as ties and are set to exactly 0
before testing, so floating-point noise in equal values never counts as an improvement. When every
difference is 0 both tests report statistic 0 and p = 1; when all differences equal the same
non-zero value the t statistic is infinite and p = 0.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import attrs
import numpy as np
from scipy import stats as scipy_stats

from embedlab.errors import InvalidInputError

#: Per-query values: an array aligned with the other system's, or ``{query_id: value}``.
Values = Any


@attrs.frozen
class PairedComparison:
    """Outcome of comparing one system with the baseline on the same queries."""

    system: str
    baseline: str
    n_queries: int
    mean_system: float
    mean_baseline: float
    improved: int
    degraded: int
    tied: int
    t_statistic: float
    p_ttest: float
    wilcoxon_statistic: float
    p_wilcoxon: float
    p_ttest_holm: float
    """The t-test p-value after Holm correction across the systems compared together."""
    p_wilcoxon_holm: float

    @property
    def mean_difference(self) -> float:
        return self.mean_system - self.mean_baseline

    def to_json(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "mean_difference": self.mean_difference}


def paired_values(system: Values, baseline: Values) -> tuple[np.ndarray, np.ndarray]:
    """Two aligned float arrays from arrays of equal length or mappings over the same query ids."""
    if isinstance(system, Mapping) or isinstance(baseline, Mapping):
        if not (isinstance(system, Mapping) and isinstance(baseline, Mapping)):
            raise InvalidInputError("pass both systems' values as {query_id: value} mappings "
                                    "or both as arrays")
        if system.keys() != baseline.keys():
            only = sorted(set(system) ^ set(baseline))
            raise InvalidInputError(f"the systems were evaluated on different queries: {len(only)} "
                                    f"query id(s) in only one of them, e.g. {only[:5]}")
        keys = sorted(system)
        system, baseline = [system[k] for k in keys], [baseline[k] for k in keys]
    a = np.asarray(system, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise InvalidInputError(f"per-query values must be two 1-d arrays of equal length, got {a.shape} "
                                f"and {b.shape}")
    if a.size < 2:
        raise InvalidInputError(f"a paired test needs at least 2 queries, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise InvalidInputError("per-query values contain NaN or infinity")
    return a, b


def _t_test(diff: np.ndarray) -> tuple[float, float]:
    if not diff.any():
        return 0.0, 1.0
    if np.all(diff == diff[0]):
        return math.copysign(math.inf, diff[0]), 0.0
    result = scipy_stats.ttest_1samp(diff, 0.0)
    return float(result.statistic), float(result.pvalue)


def _wilcoxon(diff: np.ndarray) -> tuple[float, float]:
    if not diff.any():
        return 0.0, 1.0
    result = scipy_stats.wilcoxon(diff)
    return float(result.statistic), float(result.pvalue)


def paired_tests(system: Values, baseline: Values, *, system_name: str = "system",
            baseline_name: str = "baseline", tie_tolerance: float = 1e-12) -> PairedComparison:
    """Paired t-test, Wilcoxon signed-rank test and win/loss/tie counts of ``system`` vs ``baseline``."""
    a, b = paired_values(system, baseline)
    diff = a - b
    diff[np.abs(diff) <= tie_tolerance] = 0.0
    t_stat, t_p = _t_test(diff)
    w_stat, w_p = _wilcoxon(diff)
    return PairedComparison(system_name, baseline_name, int(a.size), float(a.mean()), float(b.mean()),
                            int((diff > 0).sum()), int((diff < 0).sum()), int((diff == 0).sum()),
                            t_stat, t_p, w_stat, w_p, t_p, w_p)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm(-Bonferroni) adjusted p-values, in the input order.

    The i-th smallest of m p-values is multiplied by ``m - i + 1`` (i from 1), made non-decreasing
    in that order, and capped at 1. Rejecting where the adjusted value is <= alpha controls the
    family-wise error rate at alpha.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise InvalidInputError(f"holm: p-values must be a 1-d sequence of numbers in [0, 1], "
                                f"got {pvalues!r}")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (p.size - np.arange(p.size))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def compare_systems(systems: Mapping[str, Values], baseline: Values, *, baseline_name: str = "baseline",
                    tie_tolerance: float = 1e-12) -> list[PairedComparison]:
    """Compare every system with ``baseline``; ``*_holm`` p-values are corrected across the systems."""
    if not systems:
        raise InvalidInputError("compare_systems: no systems to compare with the baseline")
    results = [paired_tests(values, baseline, system_name=name, baseline_name=baseline_name,
                       tie_tolerance=tie_tolerance) for name, values in systems.items()]
    t_holm = holm([r.p_ttest for r in results])
    w_holm = holm([r.p_wilcoxon for r in results])
    return [attrs.evolve(r, p_ttest_holm=float(t), p_wilcoxon_holm=float(w))
            for r, t, w in zip(results, t_holm, w_holm)]
