"""Paired significance tests against scipy and hand computations; Holm correction."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from embedlab.errors import InvalidInputError
from embedlab.stats import compare_systems, holm, paired_tests


def test_tests_match_scipy_on_random_paired_values() -> None:
    rng = np.random.default_rng(3)
    for n in (5, 12, 40, 80):
        baseline = rng.random(n)
        system = np.clip(baseline + rng.normal(0.05, 0.1, n), 0, 1)
        result = paired_tests(system, baseline)
        t = scipy_stats.ttest_rel(system, baseline)
        w = scipy_stats.wilcoxon(system, baseline)
        assert result.t_statistic == pytest.approx(t.statistic, rel=1e-12)
        assert result.p_ttest == pytest.approx(t.pvalue, rel=1e-12)
        assert result.wilcoxon_statistic == pytest.approx(w.statistic)
        assert result.p_wilcoxon == pytest.approx(w.pvalue, rel=1e-12)
        assert result.mean_difference == pytest.approx(system.mean() - baseline.mean())
        assert result.improved + result.degraded + result.tied == n == result.n_queries


def test_hand_computed_example() -> None:
    baseline = np.array([0.2, 0.3, 0.1, 0.4, 0.0])
    system = baseline + np.array([0.1, 0.2, 0.3, 0.4, 0.5])  # differences 0.1 .. 0.5
    result = paired_tests(system, baseline, system_name="new", baseline_name="bm25")
    # t = mean / (sd / sqrt(n)) = 0.3 / (sqrt(0.025) / sqrt(5)) = 3 * sqrt(2)
    assert result.t_statistic == pytest.approx(3 * math.sqrt(2))
    # Wilcoxon exact: all 5 differences positive, W- = 0; two-sided p = 2 / 2**5
    assert result.wilcoxon_statistic == 0.0 and result.p_wilcoxon == pytest.approx(0.0625)
    assert (result.improved, result.degraded, result.tied) == (5, 0, 0)
    assert (result.system, result.baseline) == ("new", "bm25")
    assert result.to_json()["mean_difference"] == pytest.approx(0.3)


def test_identical_systems_give_p_one_without_warnings() -> None:
    values = np.array([0.1, 0.5, 0.0, 1.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = paired_tests(values, values.copy())
    assert (result.t_statistic, result.p_ttest) == (0.0, 1.0)
    assert (result.wilcoxon_statistic, result.p_wilcoxon) == (0.0, 1.0)
    assert (result.improved, result.degraded, result.tied) == (0, 0, 4)


def test_constant_difference_is_infinitely_significant_for_the_t_test() -> None:
    result = paired_tests([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    assert result.t_statistic == math.inf and result.p_ttest == 0.0


def test_float_noise_counts_as_a_tie() -> None:
    result = paired_tests([1 / 3, 0.5, 0.9], [1 / 3 + 1e-15, 0.25, 1.0])
    assert (result.improved, result.degraded, result.tied) == (1, 1, 1)


def test_mappings_are_aligned_by_query_id() -> None:
    system = {"q1": 0.9, "q2": 0.1, "q3": 0.5}
    baseline = {"q3": 0.4, "q1": 0.2, "q2": 0.3}
    assert paired_tests(system, baseline).p_ttest == pytest.approx(
        scipy_stats.ttest_rel([0.9, 0.1, 0.5], [0.2, 0.3, 0.4]).pvalue)
    with pytest.raises(InvalidInputError, match="different queries"):
        paired_tests(system, {"q1": 0.2, "q2": 0.3, "q4": 0.4})


@pytest.mark.parametrize("system, baseline, message", [
    ([0.1, 0.2], [0.1], "equal length"), ([0.1], [0.2], "at least 2 queries"),
    ([0.1, np.nan], [0.1, 0.2], "NaN"), ({"q": 0.1, "r": 0.2}, [0.1, 0.2], "both"),
])
def test_bad_inputs(system, baseline, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        paired_tests(system, baseline)


def test_holm_hand_computed() -> None:
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.2]), [0.2])
    with pytest.raises(InvalidInputError):
        holm([0.1, 1.5])


def test_compare_systems_applies_holm_across_systems() -> None:
    rng = np.random.default_rng(11)
    baseline = rng.random(30)
    systems = {name: np.clip(baseline + rng.normal(shift, 0.1, 30), 0, 1)
               for name, shift in (("a", 0.0), ("b", 0.05), ("c", 0.1))}
    results = compare_systems(systems, baseline, baseline_name="base")
    assert [r.system for r in results] == ["a", "b", "c"] and {r.baseline for r in results} == {"base"}
    np.testing.assert_allclose([r.p_ttest_holm for r in results], holm([r.p_ttest for r in results]))
    np.testing.assert_allclose([r.p_wilcoxon_holm for r in results],
                               holm([r.p_wilcoxon for r in results]))
    assert all(r.p_ttest_holm >= r.p_ttest for r in results)
    assert results[2].p_ttest == pytest.approx(scipy_stats.ttest_rel(systems["c"], baseline).pvalue)
