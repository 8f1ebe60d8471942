"""LIMIT and margin experiments against the papers' numbers, with run times (wall and CPU).

    python benchmarks/limit_experiments.py            # all three, a few minutes each on 2 cores
    python benchmarks/limit_experiments.py --only critical

* critical n per dimension (embedlab-limit) against Table 6 of Weller et al. (ratio ours / paper);
* smallest dimension with a positive margin, sigmoid versus InfoNCE (embedlab-margin), against the
  values reported from the authors' raw files (unverified, [SEC]); ratio InfoNCE d / sigmoid d;
* BM25 and MiniLM Recall@k on LIMIT-small (``plugins/limit/experiments/limit-small.toml``) against
  the paper's BM25 (Table 4).

The experiments themselves are the plugins' commands; this script runs them in one process and
prints one summary.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from embedlab_limit import critical
from embedlab_limit.reporting import format_table
from embedlab_margin import min_dimension

ROOT = Path(__file__).resolve().parents[1]
LIMIT_SMALL_TOML = ROOT / "plugins" / "limit" / "experiments" / "limit-small.toml"
#: Table 4 of Weller et al.: BM25 on LIMIT-small, Recall@2/10/20 (percent).
PAPER_BM25 = {"R@2": 97.8, "R@10": 100.0, "R@20": 100.0}


def timed(function, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - wall, time.process_time() - cpu


def bench_critical(dims: list[int]) -> None:
    results, wall, cpu = timed(critical.run, dims, progress=False)
    rows = [[r.dim, r.critical_n, critical.PAPER_CRITICAL_N[r.dim], r.critical_n / critical.PAPER_CRITICAL_N[r.dim]]
            for r in results]
    print(format_table(["d", "critical n", "paper", "ratio"], rows))
    print(f"critical n: {wall:.0f} s wall, {cpu:.0f} s CPU\n")


def bench_margin(ns: list[int]) -> None:
    results, wall, cpu = timed(min_dimension.run, ns, ["sigmoid", "infonce"], progress=False)
    found = {(r.loss, r.n): r.min_dim for r in results}
    rows = []
    for n in ns:
        sigmoid, infonce = found[("sigmoid", n)], found[("infonce", n)]
        ratio = infonce / sigmoid if sigmoid and infonce else None
        rows.append([n, sigmoid, min_dimension.REPORTED["sigmoid"].get(n), infonce,
                     min_dimension.REPORTED["infonce"].get(n), ratio])
    print(format_table(["n", "sigmoid d", "reported", "infonce d", "reported", "infonce/sigmoid"], rows))
    print(f"margin: {wall:.0f} s wall, {cpu:.0f} s CPU\n")


def bench_limit_small() -> None:
    from embedlab.experiment import load_config
    from embedlab.experiment.runner import run_experiment

    result, wall, cpu = timed(run_experiment, load_config(LIMIT_SMALL_TOML), progress=False)
    rows = []
    for outcome in result.outcomes:
        values = outcome.evaluation.aggregates
        rows.append([outcome.name, *(100 * values[m] for m in PAPER_BM25),
                     *(100 * values[m] / PAPER_BM25[m] for m in PAPER_BM25)])
    print(format_table(["pipeline", *PAPER_BM25, *(f"{m} / paper BM25" for m in PAPER_BM25)], rows))
    print(f"LIMIT-small: {wall:.0f} s wall, {cpu:.0f} s CPU\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["critical", "margin", "limit-small"])
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 5, 6, 7, 8])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 40])
    args = parser.parse_args()
    if args.only in (None, "critical"):
        bench_critical(args.dims)
    if args.only in (None, "margin"):
        bench_margin(args.n)
    if args.only in (None, "limit-small"):
        bench_limit_small()


if __name__ == "__main__":
    main()
