"""DIME query-aware dimension masking on SciFact and python-stdlib (test splits, MiniLM).

The first stage is the exact MiniLM top-``depth`` (numpy inner product); every variant reranks it
with the ``dime`` reranker: full dimensions (keep-fraction 1), PRF-DIME with several ``prf_docs``,
oracle DIME (peeks at the test labels: an upper bound) and the learned predictor trained on the
train split's oracles. Prints nDCG@10 per keep-fraction, the delta to full dimensions, and the
latency each variant adds per query; plots nDCG@10 against keep-fraction.

    python benchmarks/bench_dime.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import common
import torch

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate
from embedlab.ranking import Ranking

METRIC = "nDCG@10"
QUIET = {"num_threads": 1, "show_progress": False}


def first_stage(encoded: common.EncodedSplit, depth: int) -> tuple[Ranking, float]:
    """Exact inner-product top-``depth`` and its search time per query."""
    start = time.perf_counter()
    ranking = encoded.exact_ranking(depth)
    return ranking, (time.perf_counter() - start) / len(encoded.query_ids)


def ndcg(ranking: Ranking, qrels) -> float:
    return float(evaluate(ranking, qrels, [METRIC]).aggregates[METRIC])


def run_dataset(name: str, args: argparse.Namespace) -> dict:
    dataset = common.load(name)
    corpus = dataset.corpus
    test, train = common.encode_split(dataset, "test"), common.encode_split(dataset, args.train_split)
    ranking, search_s = first_stage(test, args.depth)
    train_ranking, _ = first_stage(train, args.depth)
    queries = dataset.split("test").queries
    cache = EmbeddingCache()

    def make(**params) -> embedlab.Component:
        reranker = embedlab.create("reranker", "dime", depth=args.depth, encoder_params=QUIET,
                                   num_threads=args.threads, **params)
        reranker.use_cache(cache)
        return reranker

    variants = {f"prf k={k}": {"estimator": "prf", "prf_docs": k} for k in args.prf_docs}
    variants["oracle"] = {"estimator": "oracle"}
    variants["learned"] = {"estimator": "learned"}
    start = time.perf_counter()
    learned = make(estimator="learned").fit(train_ranking, dataset.split(args.train_split), corpus)
    fit_s = time.perf_counter() - start
    full = ndcg(make(keep_fraction=1.0).rerank(ranking, queries, corpus), test.qrels)
    first = ndcg(ranking, test.qrels)
    print(f"\n## {name}: {len(test.query_ids)} test queries, {len(corpus)} documents, rerank top-{args.depth}; "
          f"learned predictor fitted on {len(train.query_ids)} {args.train_split} queries in {fit_s:.1f} s "
          f"({len(learned.history['train'])} epochs)")
    print(f"first stage {METRIC} {first:.4f}; dime keep 1.0 (full dims) {full:.4f}\n")
    table: dict[str, dict[float, float]] = {}
    latency: dict[str, float] = {}
    for label, params in variants.items():
        table[label] = {}
        for alpha in args.alphas:
            reranker = make(keep_fraction=alpha, **params)
            if label == "oracle":
                reranker.use_qrels(test.qrels)
            if label == "learned":
                reranker.weights = learned.weights
            seconds, out = common.best_time(lambda r=reranker: r.rerank(ranking, queries, corpus), 1)
            table[label][alpha] = ndcg(out, test.qrels)
            if alpha == 0.5:
                seconds, _ = common.best_time(lambda r=reranker: r.rerank(ranking, queries, corpus), args.repeats)
                latency[label] = seconds / len(test.query_ids)
    seconds, _ = common.best_time(lambda: make(keep_fraction=1.0).rerank(ranking, queries, corpus), args.repeats)
    latency["full dims (keep 1.0)"] = seconds / len(test.query_ids)
    print("| variant | " + " | ".join(f"{a:g}" for a in args.alphas) + " | best (delta vs full) |")
    print("|---|" + "---|" * (len(args.alphas) + 1))
    for label, row in table.items():
        best = max(row, key=row.get)
        print(f"| {label} | " + " | ".join(f"{row[a]:.4f}" for a in args.alphas)
              + f" | {row[best]:.4f} @ {best:g} ({100 * (row[best] - full):+.2f} pts) |")
    print(f"\nlatency per query (rerank call, warm cache, best of {args.repeats}; exact first stage "
          f"{1e3 * search_s:.3f} ms/query):\n")
    print("| variant | ms / query | ratio to first stage |\n|---|---|---|")
    for label, seconds in latency.items():
        print(f"| {label} | {1e3 * seconds:.3f} | {seconds / search_s:.2f}x |")
    return {"first": first, "full": full, "table": table}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        for label, row in result["table"].items():
            alphas = sorted(row)
            ax.plot(alphas, [row[a] for a in alphas], "o-", markersize=3, label=label)
        ax.axhline(result["full"], color="grey", linestyle="--", label="full dimensions")
        ax.set_xlabel("keep-fraction (share of query dimensions kept)")
        ax.set_ylabel(METRIC)
        ax.set_title(f"{name} test, DIME rerank of MiniLM top-100")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--train-split", default="train")
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    parser.add_argument("--prf-docs", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=Path("docs/benchmarks/dime.png"))
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
