"""JPQ (embedlab-jpq) against FAISS PQ and OPQ at equal bytes per vector, MiniLM embeddings.

For each dataset the compressors are trained on the *train* split's queries and qrels and
everything is evaluated on the *test* split's queries over the same corpus. Rows per code size
(m bytes), each run once per seed:

* exact float search (embedlab ExactIndex, inner product) - the reference for recall@10;
* FAISS ``PQ{m}`` and ``OPQ{m},PQ{m}`` (index_factory, inner product), trained on the corpus with
  the seed as their k-means seed;
* ours, init: ``jpq`` with ``opq=True`` and the same seed, untrained: FAISS's own OPQ + PQ training,
  so it is the FAISS OPQ index (searched by our ADC) and JPQ's starting point;
* ours, JPQ centroids only: the init, then the centroids trained with JPQ's ranking loss
  (``query_adapter=False``);
* ours, JPQ joint: centroids and the linear query map trained together (the defaults).

PQ's k-means seed alone moves nDCG@10 by about 0.02 here, so every number is a mean over
``--seeds``; the margins are paired (JPQ minus the FAISS row of the same seed, which is also
JPQ's own starting point). Ours are searched through the core ExactIndex with ``use_compressor``
(ADC over the codes). All run in one process with the same thread count. ``unseen nDCG@10``
only counts test queries none of whose relevant documents is relevant to any train query. A second
table tests each JPQ variant against FAISS OPQ over queries (paired t-test and Wilcoxon on the
per-query nDCG@10 averaged over the seeds, Holm-corrected across the table).

    python benchmarks/bench_jpq.py --datasets scifact python-stdlib --m 16 32 48 --seeds 0 1 2 --threads 2 \
        --plot docs/benchmarks/jpq.png --json results/bench_jpq.json
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time

import attrs
import common
import faiss
import numpy as np
import torch
from embedlab_jpq import JPQCompressor, relevant_positions

from embedlab import Ranking, SearchResult
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.stats import holm, paired_tests


def faiss_row(kind: str, factory: str, docs: np.ndarray, queries: np.ndarray, repeats: int, seed: int) -> dict:
    start = time.perf_counter()
    index = faiss.index_factory(docs.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    quantiser = faiss.downcast_index(index.index if isinstance(index, faiss.IndexPreTransform) else index)
    quantiser.pq.cp.seed = seed
    index.train(docs)
    index.add(docs)
    fit = time.perf_counter() - start
    seconds, (scores, found) = common.best_time(lambda: index.search(queries, 10), repeats)
    return {"method": kind, "bytes": index.sa_code_size(), "fit": fit, "search": seconds,
            "result": SearchResult(scores, found)}


def ours_row(kind: str, compressor: JPQCompressor, fit: float, docs: np.ndarray, queries: np.ndarray,
             repeats: int) -> dict:
    index = ExactIndex(metric="ip")
    index.use_compressor(compressor)
    index.build(docs)
    seconds, result = common.best_time(lambda: index.search(queries, 10), repeats)
    return {"method": kind, "bytes": compressor.bytes_per_vector, "fit": fit, "search": seconds, "result": result}


def run_dataset(name: str, args: argparse.Namespace) -> list[dict]:
    dataset = common.load(name)
    train, test = common.encode_split(dataset, "train"), common.encode_split(dataset, "test")
    docs, queries = test.docs, test.queries
    relevant = relevant_positions(train.query_ids, train.qrels, train.doc_ids)
    unseen = test.unseen_qrels(train)
    print(f"\n## {name}: {len(docs)} documents x {docs.shape[1]} dims; {len(train.queries)} train queries "
          f"({sum(bool(r) for r in relevant)} with qrels), {len(queries)} test queries "
          f"({len(unseen)} with unseen relevant documents); seeds {args.seeds}")
    exact_index = ExactIndex(metric="ip")
    exact_index.build(docs)
    exact_s, exact = common.best_time(lambda: exact_index.search(queries, 10), args.repeats)
    rows = [{"m": 0, "seed": seed, "method": "exact float32", "bytes": docs.shape[1] * 4, "fit": 0.0,
             "search": exact_s, "result": exact} for seed in args.seeds]
    for seed in args.seeds:
        for m in args.m:
            rows += [{"m": m, "seed": seed, **faiss_row(f"FAISS PQ{m}", f"PQ{m}", docs, queries, args.repeats, seed)},
                     {"m": m, "seed": seed, **faiss_row(f"FAISS OPQ{m},PQ{m}", f"OPQ{m},PQ{m}", docs, queries,
                                                        args.repeats, seed)}]
            start = time.perf_counter()
            plain = JPQCompressor(m=m, opq=True, seed=seed, num_threads=args.threads, lr=args.lr,
                                  query_lr=args.query_lr, holdout=args.holdout).fit(docs)
            init_fit = time.perf_counter() - start
            rows.append({"m": m, "seed": seed, **ours_row("ours init (FAISS OPQ, untrained)", plain, init_fit,
                                                          docs, queries, args.repeats)})
            for label, adapter in (("centroids only", False), ("joint", True)):
                start = time.perf_counter()
                jpq = copy.deepcopy(plain)
                jpq.config = attrs.evolve(plain.config, query_adapter=adapter)
                jpq.train(train.docs, train.queries, relevant)
                fit = init_fit + time.perf_counter() - start
                rows.append({"m": m, "seed": seed, "epoch": jpq.training_record["best_epoch"],
                             **ours_row(f"ours JPQ {label}", jpq, fit, docs, queries, args.repeats)})
    for row in rows:
        ranking = Ranking.from_search(test.query_ids, row["result"], test.doc_ids)
        row["per_query"] = evaluate(ranking, test.qrels, ["nDCG@10"]).per_query["nDCG@10"]
        row["ndcg"] = float(np.mean(row["per_query"]))
        row["unseen"] = float(evaluate(ranking, unseen, ["nDCG@10"]).aggregates["nDCG@10"]) if unseen else float("nan")
        row["recall"] = common.recall_at_k(exact.indices, row["result"].indices, 10)
        row["dataset"] = name
    for row in rows:
        same = [r["ndcg"] for r in rows if r["m"] == row["m"] and r["seed"] == row["seed"]
                and r["method"].startswith("FAISS")]
        row["margin"] = row["ndcg"] - max(same) if same and not row["method"].startswith("FAISS") else None
    print_table(rows, docs.shape[1] * 4, len(queries))
    print_tests(rows, args.m)
    return rows


def print_tests(rows: list[dict], sizes: list[int]) -> None:
    """Paired tests over queries of each JPQ variant vs FAISS OPQ: per-query nDCG@10 averaged over
    the seeds first (each seed paired with its own FAISS index), Holm-corrected across the table."""
    tests = []
    for m in sizes:
        baseline = np.mean([r["per_query"] for r in rows if r["m"] == m and r["method"].startswith("FAISS OPQ")], 0)
        for label in ("ours JPQ centroids only", "ours JPQ joint"):
            system = np.mean([r["per_query"] for r in rows if r["m"] == m and r["method"] == label], 0)
            tests.append((m, label, paired_tests(system, baseline)))
    corrected = holm([t.p_ttest for _, _, t in tests])
    corrected_w = holm([t.p_wilcoxon for _, _, t in tests])
    print("\n| bytes | vs FAISS OPQ (per-query nDCG@10, mean over seeds) | difference | p t-test (Holm) | "
          "p Wilcoxon (Holm) | queries better / worse |")
    print("|---|---|---|---|---|---|")
    for (m, label, test), p_t, p_w in zip(tests, corrected, corrected_w):
        print(f"| {m} | {label} | {test.mean_difference:+.4f} | {p_t:.2g} | {p_w:.2g} | "
              f"{test.improved} / {test.degraded} |")


def print_table(rows: list[dict], float_bytes: int, n_queries: int) -> None:
    """One line per (m, method): means over the seeds; nDCG@10 also its spread (min-max)."""
    print("| method | bytes/vector | compression | recall@10 vs exact | nDCG@10 (mean, min-max) | unseen nDCG@10 | "
          "fit s | ms/query | margin vs best FAISS, same seed (mean; wins) | best epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((r["m"], r["method"]) for r in rows):
        group = [r for r in rows if (r["m"], r["method"]) == key]
        first = group[0]
        ndcg = [r["ndcg"] for r in group]
        margins = [r["margin"] for r in group if r["margin"] is not None]
        margin = f"{np.mean(margins):+.4f}; {sum(x > 0 for x in margins)}/{len(margins)}" if margins else ""
        epochs = ",".join(str(r["epoch"]) for r in group if "epoch" in r)
        print(f"| {first['method']} | {first['bytes']:g} | {float_bytes / first['bytes']:.0f}x | "
              f"{np.mean([r['recall'] for r in group]):.3f} | {np.mean(ndcg):.4f} ({min(ndcg):.4f}-{max(ndcg):.4f}) | "
              f"{np.mean([r['unseen'] for r in group]):.4f} | {np.mean([r['fit'] for r in group]):.1f} | "
              f"{1000 * np.mean([r['search'] for r in group]) / n_queries:.3f} | {margin} | {epochs} |")


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["dataset"] for r in rows})
    figure, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for axis, name in zip(axes[0], names):
        part = [r for r in rows if r["dataset"] == name]
        for method in dict.fromkeys(re.sub(r"\d+", "", r["method"]) for r in part if r["m"]):
            group = [r for r in part if r["m"] and re.sub(r"\d+", "", r["method"]) == method]
            sizes = sorted({r["bytes"] for r in group})
            means = [np.mean([r["ndcg"] for r in group if r["bytes"] == b]) for b in sizes]
            axis.plot(sizes, means, marker="o", label=method)
        exact = next(r for r in part if r["m"] == 0)
        axis.axhline(exact["ndcg"], color="grey", linestyle="--", label="exact float32")
        axis.set(title=f"{name} (test, mean over seeds)", xlabel="bytes per vector", ylabel="nDCG@10")
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"\nplot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--m", nargs="+", type=int, default=[16, 32, 48], help="subspaces = bytes per vector")
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads (all methods)")
    parser.add_argument("--lr", type=float, default=2e-5, help="Adam learning rate of the centroids")
    parser.add_argument("--query-lr", type=float, default=3e-4, help="Adam learning rate of the query map")
    parser.add_argument("--holdout", default="documents", choices=["queries", "documents"],
                        help="JPQ early-stopping validation: random train queries, or queries with unseen documents")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="k-means and training seeds")
    parser.add_argument("--repeats", type=int, default=3, help="search timings: best of N")
    parser.add_argument("--plot", default=None, help="write an nDCG@10 vs bytes plot (png)")
    parser.add_argument("--json", default=None, help="also write the table rows as JSON")
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    rows = [row for name in args.datasets for row in run_dataset(name, args)]
    if args.plot:
        plot(rows, args.plot)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump([{k: v for k, v in row.items() if k not in ("result", "per_query")} for row in rows],
                      handle, indent=1)


if __name__ == "__main__":
    main()
