"""DIME query-aware dimension masking on SciFact and python-stdlib (MiniLM), with every choice made on
held-out *training* queries.

The first stage is the exact MiniLM top-``depth`` (numpy inner product); every variant reranks it
with the ``dime`` reranker. The train split's queries are split once (seeded): ``1 - select`` of
them fit the learned predictor ("Learning to Select", which holds out its own share for early
stopping) and the supervised control ``global`` (one query-independent mask, the mean oracle
importance of the same queries: it isolates the *query-aware* part); the other ``select`` share
chooses each variant's keep fraction (and PRF's number of feedback documents) by nDCG@10. The
test split is read once, at the chosen values: nDCG@10 on the whole test split and on its unseen
subset (:mod:`embedlab.splits`), paired t-test and Wilcoxon against full dimensions (Holm across the
variants). The oracle reads the test labels (an upper bound, not a method). A sweep over test keep
fractions is printed and plotted for the shape of the curves only.

    python benchmarks/bench_dime.py --plot docs/benchmarks/dime.png
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import common
import numpy as np
import torch

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.dataset import Split
from embedlab.metrics import evaluate
from embedlab.ranking import Ranking
from embedlab.stats import compare_systems
from embedlab.training import holdout_split

METRIC = "nDCG@10"
QUIET = {"num_threads": 1, "show_progress": False, **common.ENCODER_PARAMS["minilm"]}


def first_stage(encoded: common.EncodedSplit, depth: int) -> tuple[Ranking, float]:
    """Exact inner-product top-``depth`` and its search time per query."""
    start = time.perf_counter()
    ranking = encoded.exact_ranking(depth)
    return ranking, (time.perf_counter() - start) / len(encoded.query_ids)


def per_query(ranking: Ranking, qrels) -> dict[str, float]:
    return evaluate(ranking, qrels, [METRIC]).query_values(METRIC)


def mean(values: dict[str, float]) -> float:
    return float(np.mean(list(values.values())))


def subset(split: Split, ranking: Ranking, ids: list[str]) -> tuple[Split, Ranking]:
    """The queries ``ids`` of a split and of its first-stage ranking."""
    rows = [int(np.flatnonzero(ranking.query_ids == q)[0]) for q in ids]
    part = Ranking(ranking.query_ids[rows], ranking.doc_ids[rows], ranking.scores[rows])
    return Split(split.name, split.queries.select(ids), {q: split.qrels[q] for q in ids}), part


def run_dataset(name: str, args: argparse.Namespace) -> dict:
    dataset = common.load(name)
    corpus = dataset.corpus
    test, train = common.encode_split(dataset, "test"), common.encode_split(dataset, "train")
    ranking, search_s = first_stage(test, args.depth)
    train_ranking, _ = first_stage(train, args.depth)
    test_split, train_split = dataset.split("test"), dataset.split("train")
    order = np.random.default_rng(args.seed).permutation(len(train_split.queries))
    fit_rows, select_rows = holdout_split(order, args.select)
    ids = train_split.queries.ids
    fit_split, fit_ranking = subset(train_split, train_ranking, [str(ids[i]) for i in sorted(fit_rows)])
    select_split, select_ranking = subset(train_split, train_ranking, [str(ids[i]) for i in sorted(select_rows)])
    unseen = test.unseen_qrels(train)
    cache = EmbeddingCache()

    def make(**params) -> embedlab.Component:
        reranker = embedlab.create("reranker", "dime", depth=args.depth, encoder_params=QUIET,
                                   num_threads=args.threads, seed=args.seed, **params)
        reranker.use_cache(cache)
        return reranker

    start = time.perf_counter()
    learned = make(estimator="learned").fit(fit_ranking, fit_split, corpus)
    fit_s = time.perf_counter() - start
    control = make(estimator="global").fit(fit_ranking, fit_split, corpus)
    variants = {f"prf k={k}": {"estimator": "prf", "prf_docs": k} for k in args.prf_docs}
    variants |= {"learned": {"estimator": "learned"}, "global mask (control)": {"estimator": "global"},
                 "oracle (test labels)": {"estimator": "oracle"}}
    trained = {"learned": learned.weights, "global mask (control)": control.weights}

    def reranker(label: str, alpha: float, labels) -> embedlab.Component:
        made = make(keep_fraction=alpha, **variants[label])
        if label in trained:
            made.weights = trained[label]
        if label.startswith("oracle"):
            made.use_qrels(labels)
        return made

    print(f"\n## {name}: {len(test.query_ids)} test queries ({len(unseen)} unseen), {len(corpus)} documents, "
          f"rerank top-{args.depth}; train queries: {len(fit_split.queries)} fit (learned predictor: {fit_s:.1f} s, "
          f"{len(learned.history['train'])} epochs), {len(select_split.queries)} held out to choose the keep fraction",
          flush=True)
    # choices on the held-out training queries
    chosen: dict[str, float] = {}
    selection: dict[str, dict[float, float]] = {}
    for label in variants:
        selection[label] = {a: mean(per_query(reranker(label, a, select_split.qrels).rerank(
            select_ranking, select_split.queries, corpus), select_split.qrels)) for a in args.alphas}
        chosen[label] = max(selection[label], key=lambda a: (selection[label][a], a))
    prf_labels = [label for label in variants if label.startswith("prf")]
    best_prf = max(prf_labels, key=lambda label: selection[label][chosen[label]])
    full_select = selection[prf_labels[0]][1.0]
    print(f"held-out train queries: full dimensions {METRIC} {full_select:.4f}; chosen keep fraction per variant: "
          + ", ".join(f"{label} {chosen[label]:g} ({selection[label][chosen[label]]:.4f})" for label in variants)
          + f"; PRF variant chosen: {best_prf}")
    # the test split, read once at the chosen values
    full_run = make(keep_fraction=1.0).rerank(ranking, test_split.queries, corpus)
    full = {"all": per_query(full_run, test.qrels), "unseen": per_query(full_run, unseen) if unseen else {}}
    systems = {"PRF-DIME (k, keep chosen)": (best_prf, chosen[best_prf]), "learned": ("learned", chosen["learned"]),
               "global mask (control)": ("global mask (control)", chosen["global mask (control)"]),
               "oracle (test labels)": ("oracle (test labels)", chosen["oracle (test labels)"])}
    values: dict[str, dict[str, dict[str, float]]] = {}
    for system, (label, alpha) in systems.items():
        out = reranker(label, alpha, test.qrels).rerank(ranking, test_split.queries, corpus)
        values[system] = {"all": per_query(out, test.qrels), "unseen": per_query(out, unseen) if unseen else {}}
    print(f"\ntest {METRIC} at the keep fractions chosen on held-out training queries (first stage "
          f"{mean(per_query(ranking, test.qrels)):.4f}); p: paired tests vs full dimensions, Holm across the rows\n")
    print("| variant | keep | test (all) | vs full | p t / Wilcoxon | +/- | unseen subset | vs full | p t / Wilcoxon |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| full dimensions | 1 | {mean(full['all']):.4f} | | | | "
          f"{mean(full['unseen']) if unseen else float('nan'):.4f} | | |")
    tests = {part: {c.system: c for c in compare_systems({s: v[part] for s, v in values.items()}, full[part])}
             for part in (("all", "unseen") if unseen else ("all",))}
    for system, (label, alpha) in systems.items():
        t = tests["all"][system]
        cells = [f"{system}" + (f" ({label})" if system.startswith("PRF") else ""), f"{alpha:g}",
                 f"{t.mean_system:.4f}", f"{100 * t.mean_difference:+.2f}",
                 f"{t.p_ttest_holm:.2g} / {t.p_wilcoxon_holm:.2g}", f"{t.improved}/{t.degraded}"]
        if unseen:
            u = tests["unseen"][system]
            cells += [f"{u.mean_system:.4f}", f"{100 * u.mean_difference:+.2f}",
                      f"{u.p_ttest_holm:.2g} / {u.p_wilcoxon_holm:.2g}"]
        else:
            cells += ["", "", ""]
        print("| " + " | ".join(cells) + " |")
    # shape only: the test sweep
    sweep = {label: {a: mean(per_query(reranker(label, a, test.qrels).rerank(ranking, test_split.queries, corpus),
                                       test.qrels)) for a in args.alphas} for label in variants}
    print(f"\ntest {METRIC} over every keep fraction (for the shape of the curves only; not used to choose):\n")
    print("| variant | " + " | ".join(f"{a:g}" for a in args.alphas) + " |")
    print("|---|" + "---|" * len(args.alphas))
    for label, row in sweep.items():
        print(f"| {label} | " + " | ".join(f"{row[a]:.4f}" for a in args.alphas) + " |")
    latency = {}
    for label in ("prf k=5", "learned", "global mask (control)"):
        timed = reranker(label, 0.5, test.qrels)
        seconds, _ = common.best_time(lambda r=timed: r.rerank(ranking, test_split.queries, corpus), args.repeats)
        latency[label] = seconds / len(test.query_ids)
    seconds, _ = common.best_time(lambda: make(keep_fraction=1.0).rerank(ranking, test_split.queries, corpus),
                                  args.repeats)
    latency["full dims (keep 1.0)"] = seconds / len(test.query_ids)
    print(f"\nlatency per query (rerank call, keep 0.5, warm cache, best of {args.repeats}; exact first stage "
          f"{1e3 * search_s:.3f} ms/query; load average {common.load_text()}):\n")
    print("| variant | ms / query | ratio to first stage |\n|---|---|---|")
    for label, seconds in latency.items():
        print(f"| {label} | {1e3 * seconds:.3f} | {seconds / search_s:.2f}x |")
    return {"full": mean(full["all"]), "sweep": sweep, "selection": selection, "chosen": chosen,
            "test": {s: {part: mean(v[part]) if v[part] else None for part in v} for s, v in values.items()},
            "full_unseen": mean(full["unseen"]) if unseen else None, "unseen_queries": len(unseen)}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        for label, row in result["sweep"].items():
            alphas = sorted(row)
            line, = ax.plot(alphas, [row[a] for a in alphas], "o-", markersize=3, label=label)
            ax.plot([result["chosen"][label]], [row[result["chosen"][label]]], "*", markersize=12,
                    color=line.get_color())
        ax.axhline(result["full"], color="grey", linestyle="--", label="full dimensions")
        ax.set_xlabel("keep-fraction (share of query dimensions kept)")
        ax.set_ylabel(f"test {METRIC}")
        ax.set_title(f"{name}: DIME rerank of MiniLM top-100 (* = chosen on held-out train queries)", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    parser.add_argument("--prf-docs", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--select", type=float, default=0.2,
                        help="share of the train queries held out to choose keep fractions (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path, default=Path("results/bench_dime.json"))
    args = parser.parse_args()
    common.report_load()
    torch.set_num_threads(args.threads)
    results = {name: run_dataset(name, args) for name in args.datasets}
    common.write_json(args.json, args, results)
    if args.plot:
        plot(results, args.plot)


if __name__ == "__main__":
    main()
