"""Smallest dimension whose free embeddings reach a positive margin, per number of documents
(Bangachev et al., 2026, "Is Dimensionality a Barrier for Retrieval Models?", experiments).

For each n, the queries are all C(n, k) k-subsets of the documents (LIMIT's setting). Free unit
query/document vectors are optimised with the sigmoid loss (learnable temperature and bias) or with
LIMIT's InfoNCE (temperature 0.1), Adam lr 0.01, rows renormalised after each step; a run succeeds
when its margin becomes positive: the smallest row margin (default), or with ``--criterion
global-margin`` / ``zero-margin`` the margin of one shared threshold / of the zero threshold (the
paper's retrieval margin m^rd). For every loss and n the search finds the smallest d that succeeds
while d - 1 does not, optimising ``window`` dimensions at a time as one batch::

    python -m embedlab_margin.min_dimension --n 10 20 40 60 --output results/margin
    python -m embedlab_margin.min_dimension --criterion zero-margin --losses sigmoid-b0 sigmoid infonce
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Sequence

import attrs
from embedlab_limit.cli_options import add_experiment_options, optimiser_config
from embedlab_limit.free_embedding import InfoNCE, OptimiserConfig, Outcome, PairLoss, Problem, optimise
from embedlab_limit.relevance import combination_relevance
from embedlab_limit.reporting import environment, format_table, write_json

from embedlab_margin.margins import margin_report
from embedlab_margin.sigmoid import SigmoidLoss

LOSSES: dict[str, PairLoss] = {"sigmoid": SigmoidLoss(), "sigmoid-b0": SigmoidLoss(learn_bias=False),
                               "infonce": InfoNCE(temperature=0.1)}
#: Success criteria (see embedlab_limit.evaluation.MARGINS): per-query ranking margin (the authors'
#: code, LIMIT), one threshold shared by all queries, the threshold at zero (the paper's m^rd).
CRITERIA = ("margin", "global-margin", "zero-margin")

#: Smallest d with a positive margin (k = 2) from the authors' raw experiment files, as read by a
#: third-party analysis ([SEC] in the research brief: not checked against the paper's PDF).
REPORTED = {"sigmoid": {20: 6, 40: 7, 60: 7, 80: 8, 100: 8, 120: 9, 200: 9, 240: 9},
            "infonce": {20: 10, 40: 14, 60: 19, 80: 22, 100: 23, 120: 26, 200: 30}}


@attrs.frozen
class DimensionResult:
    """The search for one loss and one n."""

    loss: str
    n: int
    k: int
    min_dim: int | None
    outcomes: tuple[Outcome, ...]
    seconds: float

    def margins_text(self) -> str:
        """Row, global-threshold and zero-threshold margins of the embeddings at the smallest d."""
        solved = [o for o in self.outcomes if o.problem.dim == self.min_dim]
        if not solved:
            return "-"
        report = margin_report(solved[0].queries, solved[0].documents, solved[0].problem.relevance)
        return f"{report.min_row_margin:+.3f} / {report.global_margin:+.3f} / {report.retrieval_margin:+.3f}"

    def evaluations(self) -> list[dict[str, object]]:
        rows = []
        for o in sorted(self.outcomes, key=lambda o: o.problem.dim):
            row: dict[str, object] = {"d": o.problem.dim, "solved": o.solved, "stop_reason": o.stop_reason,
                                      "steps": o.steps, "best_margin": o.best_margin,
                                      "best_accuracy": o.best_accuracy, "final_loss": o.final_loss,
                                      "loss_parameters": o.parameters}
            if o.solved:
                report = margin_report(o.queries, o.documents, o.problem.relevance)
                row.update(min_row_margin=report.min_row_margin, mean_row_margin=report.mean_row_margin,
                           global_margin=report.global_margin, global_threshold=report.global_threshold,
                           retrieval_margin=report.retrieval_margin)
            rows.append(row)
        return rows


def search_min_dimension(n: int, loss_name: str, *, k: int = 2, start: int = 2, window: int = 3, max_dim: int = 32,
                         seed: int = 42, config: OptimiserConfig | None = None,
                         progress: bool = True) -> DimensionResult:
    """The smallest d in ``[1, max_dim]`` that reaches a positive margin while d - 1 does not
    (``None`` when no d up to ``max_dim`` does)."""
    begin = time.perf_counter()
    loss = LOSSES[loss_name]
    relevance = combination_relevance(n, k)
    done: dict[int, Outcome] = {}
    low = max(1, start)
    while True:
        todo = [d for d in range(low, min(low + window, max_dim + 1)) if d not in done]
        if todo:
            problems = [Problem(relevance, d, seed) for d in todo]
            found = optimise(problems, loss, config, progress=progress,
                             description=f"{loss_name} n={n} d={todo[0]}..{todo[-1]}")
            done.update((o.problem.dim, o) for o in found)
        solved = sorted(d for d, o in done.items() if o.solved)
        if solved:
            if solved[0] == 1 or solved[0] - 1 in done:
                break
            low = max(1, solved[0] - window)
        elif max(done) >= max_dim:
            break
        else:
            low = max(done) + 1
    best = min((d for d, o in done.items() if o.solved), default=None)
    return DimensionResult(loss_name, n, k, best, tuple(done.values()), time.perf_counter() - begin)


def run(ns: Sequence[int], losses: Sequence[str], *, k: int = 2, window: int = 3, max_dim: int = 32,
        seed: int = 42, config: OptimiserConfig | None = None, progress: bool = True) -> list[DimensionResult]:
    """Every loss on every n (ascending); each search starts one below the previous n's answer."""
    results = []
    for loss_name in losses:
        start = 2
        for n in sorted(ns):
            result = search_min_dimension(n, loss_name, k=k, start=start, window=window, max_dim=max_dim, seed=seed,
                                          config=config, progress=progress)
            results.append(result)
            start = max(1, (result.min_dim or max_dim) - 1)
    return results


def log_fit(results: Sequence[DimensionResult]) -> tuple[float, float] | None:
    """Least-squares ``d = a + b ln n`` through the solved searches (None with fewer than two)."""
    points = [(math.log(r.n), r.min_dim) for r in results if r.min_dim is not None]
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
    return mean_y - slope * mean_x, slope


def table(results: Sequence[DimensionResult], losses: Sequence[str]) -> str:
    by_key = {(r.loss, r.n): r for r in results}
    ns = sorted({r.n for r in results})
    headers = ["n", "queries"]
    for loss in losses:
        headers += [f"{loss} d", f"{loss} reported", f"{loss} row/global/zero margin at d", f"{loss} s"]
    rows = []
    for n in ns:
        row: list[object] = [n, math.comb(n, results[0].k)]
        for loss in losses:
            r = by_key[(loss, n)]
            row += [r.min_dim if r.min_dim is not None else f">{max(o.problem.dim for o in r.outcomes)}",
                    REPORTED.get(loss, {}).get(n) if r.k == 2 else None, r.margins_text(), f"{r.seconds:.1f}"]
        rows.append(row)
    return format_table(headers, rows)


def plot(results: Sequence[DimensionResult], losses: Sequence[str], path: Path, criterion: str = "margin") -> Path:
    """Smallest dimension against n (log axis) per loss, with the reported values and a log fit."""
    from matplotlib.figure import Figure

    colours = {"sigmoid": "tab:green", "sigmoid-b0": "tab:blue", "infonce": "tab:red"}
    figure = Figure(figsize=(6.5, 4.2), tight_layout=True)
    axes = figure.subplots()
    ns = sorted({r.n for r in results})
    for loss in losses:
        mine = [r for r in results if r.loss == loss]
        colour = colours.get(loss)
        solved = [r for r in mine if r.min_dim is not None]
        axes.plot([r.n for r in solved], [r.min_dim for r in solved], "o-", color=colour, label=f"{loss} (embedlab)")
        reported = ({n: d for n, d in REPORTED.get(loss, {}).items() if min(ns) <= n <= max(ns)}
                    if mine[0].k == 2 else {})
        if reported:
            axes.plot(list(reported), list(reported.values()), "s", mfc="none", color=colour,
                      label=f"{loss} (reported, [SEC])")
        fit = log_fit(mine)
        if fit is not None and loss.startswith("sigmoid"):
            grid = [min(ns) * (max(ns) / min(ns)) ** (i / 50) for i in range(51)]
            axes.plot(grid, [fit[0] + fit[1] * math.log(x) for x in grid], ":", color=colour,
                      label=f"fit {fit[0]:.1f} + {fit[1]:.2f} ln n")
    axes.set_xscale("log")
    axes.set_xticks(ns, [str(n) for n in ns])
    axes.tick_params(axis="x", which="minor", labelbottom=False)
    axes.set_xlabel("documents n (all C(n,2) queries)")
    axes.set_ylabel(f"smallest d with a positive {criterion}")
    axes.set_title("Free embeddings: sigmoid vs InfoNCE loss")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    return path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m embedlab_margin.min_dimension",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 20, 40, 60], help="numbers of documents")
    parser.add_argument("--losses", nargs="+", choices=sorted(LOSSES), default=["sigmoid", "infonce"],
                        help="sigmoid-b0: the sigmoid loss with its bias fixed at 0 (the zero threshold)")
    parser.add_argument("--criterion", choices=CRITERIA, default="margin",
                        help="success: row margin > 0 (default), one shared threshold, or the zero threshold (m^rd)")
    parser.add_argument("--window", type=int, default=3, help="dimensions optimised together (default 3)")
    parser.add_argument("--max-dim", type=int, default=32, help="largest dimension tried (default 32)")
    add_experiment_options(parser, max_steps=20_000, output=Path("results/margin"),
                           written="min_dimension.json and min_dimension.png", checked="margin")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    torch.manual_seed(args.seed)
    config = optimiser_config(args, criterion=args.criterion)
    begin = time.perf_counter()
    results = run(args.n, args.losses, k=args.k, window=args.window, max_dim=args.max_dim, seed=args.seed,
                  config=config, progress=not args.quiet)
    seconds = time.perf_counter() - begin
    print(table(results, args.losses))
    for loss in args.losses:
        fit = log_fit([r for r in results if r.loss == loss])
        if fit is not None:
            print(f"{loss}: d ~ {fit[0]:.2f} + {fit[1]:.2f} ln n")
    print(f"total {seconds:.1f} s")
    data = {"experiment": "margin-min-dimension", "k": args.k, "seed": args.seed,
            "losses": {name: {"name": name, **attrs.asdict(LOSSES[name])} for name in args.losses},
            "optimiser": attrs.asdict(config), "window": args.window, "max_dim": args.max_dim, "seconds": seconds,
            "criterion": args.criterion, "environment": environment(),
            "reported": REPORTED if args.k == 2 else None,
            "results": [{"loss": r.loss, "n": r.n, "min_dim": r.min_dim, "seconds": r.seconds,
                         "evaluations": r.evaluations()} for r in results]}
    print(f"wrote {write_json(args.output / 'min_dimension.json', data)}")
    print(f"wrote {plot(results, args.losses, args.output / 'min_dimension.png', args.criterion)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
