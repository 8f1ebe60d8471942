"""The critical number of documents per dimension (LIMIT, section 4 / Table 6).

For dimension d, the critical n is the largest number of documents for which free embeddings,
optimised on all C(n, k) queries, reach 100% top-k accuracy. The search evaluates windows of
consecutive n as one batch (see :mod:`embedlab_limit.free_embedding`): downwards until something is
solved, upwards until the largest solved n is followed by ``confirm`` unsolved ones (the paper's
final sweep looks 5 above its binary-search result)::

    python -m embedlab_limit.critical --dims 4 5 6 7 8 --output results/limit-critical
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Sequence

import attrs

from embedlab_limit.cli_options import add_experiment_options, optimiser_config
from embedlab_limit.free_embedding import InfoNCE, OptimiserConfig, Outcome, PairLoss, Problem, optimise
from embedlab_limit.relevance import combination_relevance
from embedlab_limit.reporting import environment, format_table, write_json

#: Table 6 of the paper (k = 2): critical n for d = 4..45.
PAPER_CRITICAL_N = {4: 10, 5: 14, 6: 19, 7: 24, 8: 28, 9: 32, 10: 36, 11: 42, 12: 47, 13: 54, 14: 62, 15: 70,
                    16: 79, 17: 89, 18: 99, 19: 109, 20: 120, 21: 132, 22: 144, 23: 157, 24: 170, 25: 184,
                    26: 198, 27: 213, 28: 229, 29: 245, 30: 261, 31: 278, 32: 296, 33: 314, 34: 333, 35: 352,
                    36: 372, 37: 392, 38: 413, 39: 434, 40: 460, 41: 484, 42: 505, 43: 545, 44: 605, 45: 626}


def paper_fit(dim: float) -> float:
    """The paper's cubic fit of Table 6 (r^2 = 0.999)."""
    return -10.5322 + 4.0309 * dim + 0.0520 * dim**2 + 0.0037 * dim**3


@attrs.frozen
class CriticalResult:
    """The search for one dimension: the critical n and every evaluated n."""

    dim: int
    k: int
    critical_n: int | None
    outcomes: tuple[Outcome, ...]
    seconds: float

    def evaluations(self) -> list[dict[str, object]]:
        return [{"n": o.problem.documents, "queries": o.problem.queries, "solved": o.solved,
                 "stop_reason": o.stop_reason, "steps": o.steps, "best_accuracy": o.best_accuracy,
                 "best_margin": o.best_margin, "final_loss": o.final_loss}
                for o in sorted(self.outcomes, key=lambda o: o.problem.documents)]


def search_critical_n(dim: int, *, k: int = 2, start: int | None = None, window: int = 10, confirm: int = 5,
                      seed: int = 42, loss: PairLoss | None = None, config: OptimiserConfig | None = None,
                      progress: bool = True) -> CriticalResult:
    """The largest n solved in dimension ``dim``, with the ``confirm`` values above it unsolved.

    ``start`` is the first n tried (default ``2 * dim``); every n is optimised with the same ``seed``.
    """
    begin = time.perf_counter()
    lowest = k + 1  # every query needs a non-relevant document
    low = max(lowest, start if start is not None else 2 * dim)
    done: dict[int, Outcome] = {}
    while True:
        todo = [n for n in range(low, low + window) if n not in done]
        if todo:
            problems = [Problem(combination_relevance(n, k), dim, seed) for n in todo]
            found = optimise(problems, loss, config, progress=progress, description=f"d={dim} n={todo[0]}..{todo[-1]}")
            done.update((o.problem.documents, o) for o in found)
        solved = [n for n, o in done.items() if o.solved]
        if not solved:
            if low == lowest:
                break
            low = max(lowest, low - window)
            continue
        best = max(solved)
        if all(n in done for n in range(best + 1, best + confirm + 1)):
            break
        low = max(done) + 1
    critical = max((n for n, o in done.items() if o.solved), default=None)
    return CriticalResult(dim, k, critical, tuple(done.values()), time.perf_counter() - begin)


def plot(results: Sequence[CriticalResult], path: Path) -> Path:
    """Critical n against d: ours, the paper's Table 6 and the paper's cubic fit."""
    from matplotlib.figure import Figure

    dims = [r.dim for r in results]
    figure = Figure(figsize=(6, 4), tight_layout=True)
    axes = figure.subplots()
    paper = {d: n for d, n in PAPER_CRITICAL_N.items() if min(dims) <= d <= max(dims)}
    grid = [min(dims) + i * (max(dims) - min(dims)) / 100 for i in range(101)]
    axes.plot(grid, [paper_fit(d) for d in grid], "--", color="grey", label="paper: cubic fit")
    axes.plot(list(paper), list(paper.values()), "s", color="tab:blue", mfc="none", label="paper: Table 6")
    axes.plot(dims, [r.critical_n for r in results], "o-", color="tab:red", label="embedlab (torch, CPU)")
    axes.set_xlabel("embedding dimension d")
    axes.set_ylabel("critical n (largest n with 100% top-2 accuracy)")
    axes.set_title(f"Free embeddings, k = {results[0].k}, all C(n,{results[0].k}) queries")
    axes.grid(alpha=0.3)
    axes.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def table(results: Sequence[CriticalResult]) -> str:
    rows = []
    for r in results:
        paper = PAPER_CRITICAL_N.get(r.dim) if r.k == 2 else None
        difference = None if paper is None or r.critical_n is None else r.critical_n - paper
        rows.append([r.dim, r.critical_n, paper, difference, len(r.outcomes), f"{r.seconds:.1f}"])
    return format_table(["d", "critical n", "paper", "diff", "runs", "seconds"], rows)


def run(dims: Sequence[int], *, k: int = 2, seed: int = 42, window: int = 10, confirm: int = 5,
        start: int | None = None, loss: PairLoss | None = None, config: OptimiserConfig | None = None,
        progress: bool = True) -> list[CriticalResult]:
    """Search every dimension in ascending order; each search starts at the previous critical n."""
    results: list[CriticalResult] = []
    for dim in sorted(dims):
        previous = results[-1].critical_n if results else None
        first = previous if previous is not None else start
        results.append(search_critical_n(dim, k=k, start=first, window=window, confirm=confirm, seed=seed,
                                         loss=loss, config=config, progress=progress))
    return results


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m embedlab_limit.critical", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 5, 6, 7, 8], help="dimensions (default 4..8)")
    parser.add_argument("--window", type=int, default=10, help="values of n optimised together (default 10)")
    parser.add_argument("--confirm", type=int, default=5, help="unsolved n required above the critical n (5)")
    parser.add_argument("--start", type=int, help="first n tried for the smallest dimension (default 2d)")
    parser.add_argument("--temperature", type=float, default=0.1, help="InfoNCE temperature (default 0.1)")
    add_experiment_options(parser, max_steps=100_000, output=Path("results/limit-critical"),
                           written="critical_n.json and critical_n.png", checked="accuracy")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    torch.manual_seed(args.seed)
    config = optimiser_config(args)
    loss = InfoNCE(temperature=args.temperature)
    begin = time.perf_counter()
    results = run(args.dims, k=args.k, seed=args.seed, window=args.window, confirm=args.confirm, start=args.start,
                  loss=loss, config=config, progress=not args.quiet)
    seconds = time.perf_counter() - begin
    print(table(results))
    print(f"total {seconds:.1f} s")
    data = {"experiment": "limit-critical-n", "k": args.k, "seed": args.seed, "loss": attrs.asdict(loss),
            "optimiser": attrs.asdict(config), "window": args.window, "confirm": args.confirm, "seconds": seconds,
            "environment": environment(),
            "results": [{"d": r.dim, "critical_n": r.critical_n,
                         "paper": PAPER_CRITICAL_N.get(r.dim) if args.k == 2 else None,
                         "seconds": r.seconds, "evaluations": r.evaluations()} for r in results]}
    print(f"wrote {write_json(args.output / 'critical_n.json', data)}")
    print(f"wrote {plot(results, args.output / 'critical_n.png')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
