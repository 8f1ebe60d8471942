"""JPQ (embedlab-jpq) against FAISS PQ and OPQ at equal bytes per vector, with the supervised controls.

For each dataset JPQ is trained on the *train* split's queries and qrels (``--train-queries N``: a
seeded subset of them) and everything is evaluated on the *test* split over the same corpus, on all
test queries and on the unseen subset (test queries none of whose relevant documents is relevant to
a training query). Rows, each run once per seed:

* exact float search (the reference for recall@10); FAISS ``PQ{m}`` and ``OPQ{m},PQ{m}`` (the
  seed is their k-means seed);
* ``--parts linear`` (every ``--m``), the compressor ``jpq`` on frozen MiniLM query vectors: *init*
  (FAISS's own OPQ + PQ, JPQ's start), *centroids only*, *map + centroids* (a linear query map
  trained jointly with the centroids), and the controls of the map: *map alone* on the initial
  codes, and the *map trained against the float vectors*, served on the codes and on the floats;
* ``--parts encoder`` (``--encoder-m``), the retriever ``jpq``, the paper's method: the MiniLM
  *query encoder fine-tuned jointly with the centroids* (embedlab-train's loop) against the live
  index, and its controls: the *encoder alone* on the initial codes (centroids frozen), and the
  *encoder trained against the float vectors*, served on the codes and on the floats. The encoder's
  learning rate of each variant is chosen among ``--encoder-lr`` on held-out *training* queries
  (the best held-out nDCG@10 of early stopping, first seed), then used for every seed.

k-means' seed alone moves nDCG@10 by up to 0.03 here, so rows are means over ``--seeds`` and the
margins are paired (a method minus the best FAISS row of the same seed). The tests table compares
per-query nDCG@10 averaged over the seeds (t-test and Wilcoxon, Holm-corrected across the table),
on the whole test split and on its unseen subset. Trained query encoders are kept in the embedlab
cache (``checkpoint_dir="auto"``): a rerun reuses finished runs and resumes killed ones.

    python benchmarks/bench_jpq.py --datasets scifact python-stdlib --m 16 32 48 --seeds 0 1 2 --threads 2 \\
        --parts linear --plot docs/benchmarks/jpq.png --json results/bench_jpq.json
    python benchmarks/bench_jpq.py --datasets scifact --parts encoder --encoder-m 32 --seeds 0 1 2 \\
        --encoder-lr 5e-6 2e-5 5e-5 --threads 2 --json results/bench_jpq_encoder_scifact.json
"""

from __future__ import annotations

import argparse
import copy
import re
import time

import attrs
import common
import faiss
import numpy as np
import torch
from embedlab_jpq import JPQCompressor, JPQRetriever, relevant_positions

from embedlab import Ranking, SearchResult
from embedlab.cache import EmbeddingCache
from embedlab.dataset import Dataset, Split
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.stats import holm, paired_tests

MAP_ROWS = {"init": "ours init (FAISS OPQ, untrained)", "centroids": "map: centroids only",
            "joint": "map + centroids (JPQ loss, frozen encoder)", "alone": "map alone (OPQ codes)",
            "float": "map trained on float -> OPQ codes", "float-float": "map trained on float -> float"}
ENCODER_ROWS = {"joint": "JPQ: encoder + centroids", "alone": "encoder alone (OPQ codes)",
                "float": "encoder trained on float -> OPQ codes", "float-float": "encoder trained on float -> float"}
#: (method, baseline) pairs tested beyond "each method vs FAISS OPQ".
CONTRASTS = [(ENCODER_ROWS["joint"], ENCODER_ROWS["alone"]), (ENCODER_ROWS["joint"], ENCODER_ROWS["float"]),
             (ENCODER_ROWS["joint"], MAP_ROWS["joint"]), (ENCODER_ROWS["float-float"], "exact float32"),
             (MAP_ROWS["joint"], MAP_ROWS["alone"]), (MAP_ROWS["joint"], MAP_ROWS["float"])]


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


def float_row(kind: str, fit: float, docs: np.ndarray, queries: np.ndarray, repeats: int) -> dict:
    index = ExactIndex(metric="ip")
    index.build(docs)
    seconds, result = common.best_time(lambda: index.search(queries, 10), repeats)
    return {"method": kind, "bytes": docs.shape[1] * 4, "fit": fit, "search": seconds, "result": result}


def with_training_subset(dataset: Dataset, count: int | None, seed: int) -> Dataset:
    """The dataset, its train split cut to a seeded subset of ``count`` judged queries (None: all)."""
    qrels = dataset.qrels["train"]
    judged = sorted(q for q, judged in qrels.items() if any(g > 0 for g in judged.values()))
    if count is None or count >= len(judged):
        return dataset
    chosen = np.random.default_rng(seed).choice(judged, count, replace=False).tolist()
    return attrs.evolve(dataset, qrels={**dataset.qrels, "train": {q: qrels[q] for q in sorted(chosen)}})


def linear_rows(name: str, m: int, seed: int, docs: np.ndarray, train: common.EncodedSplit, relevant: list,
                queries: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """The compressor ``jpq`` on frozen query vectors: init, centroids only, map + centroids, and
    the map's controls."""
    start = time.perf_counter()
    plain = copy.deepcopy(opq_start(name, m, seed, docs, args))     # the retriever rows' start too
    plain.config = attrs.evolve(plain.config, query_adapter=True, lr=args.lr, query_lr=args.query_lr,
                                holdout=args.holdout)
    init_fit = time.perf_counter() - start + START_SECONDS[(name, m, seed)]
    rows = [ours_row(MAP_ROWS["init"], plain, init_fit, docs, queries, args.repeats)]
    variants = {"centroids": {"query_adapter": False}, "joint": {}, "alone": {"train_centroids": False},
                "float": {"train_centroids": False, "train_against": "float"}}
    for key, change in variants.items():
        start = time.perf_counter()
        jpq = copy.deepcopy(plain)
        jpq.config = attrs.evolve(plain.config, **change)
        jpq.train(train.docs, train.queries, relevant)
        fit = init_fit + time.perf_counter() - start
        rows.append({"epoch": jpq.training_record["best_epoch"],
                     **ours_row(MAP_ROWS[key], jpq, fit, docs, queries, args.repeats)})
        if key == "float" and m == args.m[0]:
            mapped = np.ascontiguousarray(queries @ jpq.query_adapter.T)
            rows.append({"m_override": 0, **float_row(MAP_ROWS["float-float"], fit, docs, mapped, args.repeats)})
    return rows


#: The FAISS OPQ start of every run, per (dataset, m, seed): fitted once, shared by the retriever's
#: variants and the linear part (an OPQ fit is ~100 s at one thread), and its fit seconds.
STARTS: dict[tuple[str, int, int], JPQCompressor] = {}
START_SECONDS: dict[tuple[str, int, int], float] = {}


def opq_start(name: str, m: int, seed: int, docs: np.ndarray, args: argparse.Namespace) -> JPQCompressor:
    """The untrained ``jpq`` compressor (FAISS ``OPQ{m},PQ{m}`` with k-means seed ``seed``) of ``docs``."""
    key = (name, m, seed)
    if key not in STARTS:
        start = time.perf_counter()
        STARTS[key] = JPQCompressor(m=m, opq=True, seed=seed, query_adapter=False, num_threads=args.threads).fit(docs)
        START_SECONDS[key] = time.perf_counter() - start
    return STARTS[key]


def retriever(dataset: Dataset, train: Split, seed: int, m: int, lr: float, variant: str,
              args: argparse.Namespace) -> tuple[JPQRetriever, float]:
    """The retriever ``jpq`` of one variant, trained (or reused from the cache)."""
    change = {"joint": {}, "alone": {"train_centroids": False},
              "float": {"train_centroids": False, "train_against": "float"}}[variant]
    jpq = JPQRetriever(encoder={"name": "minilm", **common.ENCODER_PARAMS["minilm"]}, m=m, seed=seed, lr=lr,
                       epochs=args.epochs, centroid_lr=args.centroid_lr, num_threads=args.threads,
                       show_progress=True, **change)
    jpq.start_from(opq_start(dataset.name, m, seed, common.encode_split(dataset, "test").docs, args))
    jpq.use_cache(EmbeddingCache())
    start = time.perf_counter()
    jpq.build(dataset.corpus, train=train)
    return jpq, time.perf_counter() - start


def held_out_best(jpq: JPQRetriever) -> float:
    return max(jpq.training_record["validation_ndcg10"])


def choose_rates(dataset: Dataset, train: Split, args: argparse.Namespace) -> dict[str, float]:
    """Per variant, the encoder learning rate with the best held-out nDCG@10 (first seed)."""
    chosen = {}
    print("\n| variant | encoder lr | held-out train nDCG@10 (start -> best) | best evaluation | epochs run | "
          "train s (a reused run: load only) | run |")
    print("|---|---|---|---|---|---|---|")
    for variant in args.variants:
        scores = []
        for lr in args.encoder_lr:
            jpq, _ = retriever(dataset, train, args.seeds[0], args.encoder_m, lr, variant, args)
            record = jpq.training_record
            scores.append(held_out_best(jpq))
            print(f"| {variant} | {lr:g} | {record['validation_ndcg10'][0]:.4f} -> {scores[-1]:.4f} | "
                  f"{record['best_evaluation']} | {record['epochs_run']} | {jpq.timings.fit_encoder_s:.0f} | "
                  f"{record['run_dir'].rsplit('/', 1)[-1][:12]} |", flush=True)
        chosen[variant] = args.encoder_lr[int(np.argmax(scores))]
    print(f"chosen on held-out training queries: {chosen}")
    return chosen


def encoder_rows(dataset: Dataset, train: Split, seed: int, rates: dict[str, float], docs: np.ndarray,
                 test: common.EncodedSplit, args: argparse.Namespace) -> list[dict]:
    """The retriever ``jpq`` (query encoder + centroids) and its controls at ``--encoder-m``."""
    rows = []
    for variant in args.variants:
        jpq, fit = retriever(dataset, train, seed, args.encoder_m, rates[variant], variant, args)
        vectors = jpq.query_encoder.encode_queries(test.query_texts)
        best = jpq.training_record["best_evaluation"]
        rows.append({"epoch": best, **ours_row(ENCODER_ROWS[variant], jpq.compressor, fit, docs, vectors,
                                               args.repeats)})
        if variant == "float":
            rows.append({"m_override": 0, "epoch": best,
                         **float_row(ENCODER_ROWS["float-float"], fit, docs, vectors, args.repeats)})
    return rows


def run_dataset(name: str, args: argparse.Namespace) -> list[dict]:
    dataset = with_training_subset(common.load(name), args.train_queries, seed=0)
    split = dataset.split("train")
    test, train = common.encode_split(dataset, "test"), common.encode_split(dataset, "train")
    docs, queries = test.docs, test.queries
    relevant = relevant_positions(train.query_ids, train.qrels, train.doc_ids)
    unseen = test.unseen_qrels(train)
    subset = "all" if args.train_queries is None else "seeded subset"
    print(f"\n## {name}: {len(docs)} documents x {docs.shape[1]} dims; {len(train.queries)} train queries "
          f"({subset}), {len(queries)} test queries ({len(unseen)} unseen); seeds {args.seeds}")
    rows = [{"m": 0, "seed": seed, **float_row("exact float32", 0.0, docs, queries, args.repeats)}
            for seed in args.seeds]
    rates = choose_rates(dataset, split, args) if "encoder" in args.parts else {}
    for seed in args.seeds:
        sizes = sorted(set(args.m if "linear" in args.parts else []) | ({args.encoder_m} if rates else set()))
        for m in sizes:
            rows += [{"m": m, "seed": seed, **faiss_row(f"FAISS PQ{m}", f"PQ{m}", docs, queries, args.repeats, seed)},
                     {"m": m, "seed": seed, **faiss_row(f"FAISS OPQ{m},PQ{m}", f"OPQ{m},PQ{m}", docs, queries,
                                                        args.repeats, seed)}]
            if "linear" in args.parts and m in args.m:
                rows += [{"m": m, "seed": seed, **row} for row in linear_rows(dataset.name, m, seed, docs, train,
                                                                             relevant, queries, args)]
            if rates and m == args.encoder_m:
                rows += [{"m": m, "seed": seed, **row} for row in encoder_rows(dataset, split, seed, rates, docs,
                                                                              test, args)]
    for row in rows:
        row["m"] = row.pop("m_override", row["m"])
        ranking = Ranking.from_search(test.query_ids, row["result"], test.doc_ids)
        row["per_query"] = evaluate(ranking, test.qrels, ["nDCG@10"]).query_values("nDCG@10")
        row["per_query_unseen"] = evaluate(ranking, unseen, ["nDCG@10"]).query_values("nDCG@10") if unseen else {}
        row["ndcg"] = float(np.mean(list(row["per_query"].values())))
        row["unseen"] = float(np.mean(list(row["per_query_unseen"].values()))) if unseen else float("nan")
        row["recall"] = common.recall_at_k(rows[0]["result"].indices, row["result"].indices, 10)
        row["dataset"] = name
    for row in rows:
        same = [r["ndcg"] for r in rows if r["m"] == row["m"] and r["seed"] == row["seed"]
                and r["method"].startswith("FAISS")]
        row["margin"] = row["ndcg"] - max(same) if same and not row["method"].startswith("FAISS") else None
    print_table(rows, docs.shape[1] * 4, len(queries))
    print_tests(rows, sorted({r["m"] for r in rows if r["m"]}), bool(unseen))
    return rows


def seed_mean(rows: list[dict], m: int, method: str, key: str) -> dict[str, float] | None:
    """Per-query values of ``method`` at ``m`` averaged over its seeds (None when absent)."""
    group = [r[key] for r in rows if r["method"] == method and r["m"] in (m, 0)]
    if not group:
        return None
    return {q: float(np.mean([g[q] for g in group])) for q in group[0]}


def print_tests(rows: list[dict], sizes: list[int], with_unseen: bool) -> None:
    """Paired tests over queries (per-query nDCG@10 averaged over the seeds, each seed against its
    own FAISS index): every method vs FAISS OPQ, and the contrasts that isolate JPQ's parts;
    Holm-corrected across the table, separately for the whole test split and its unseen subset."""
    for key, label in (("per_query", "all test queries"), ("per_query_unseen", "unseen subset")):
        if key == "per_query_unseen" and not with_unseen:
            continue
        tests = []
        for m in sizes:
            opq = f"FAISS OPQ{m},PQ{m}"
            methods = dict.fromkeys(r["method"] for r in rows if r["m"] == m and not r["method"].startswith("FAISS"))
            pairs = [(method, opq) for method in methods] + [(a, b) for a, b in CONTRASTS if a in methods]
            for system, baseline in pairs:
                a, b = seed_mean(rows, m, system, key), seed_mean(rows, m, baseline, key)
                if a is not None and b is not None:
                    tests.append((m, system, baseline, paired_tests(a, b)))
        if not tests:
            continue
        corrected = holm([t.p_ttest for *_, t in tests])
        corrected_w = holm([t.p_wilcoxon for *_, t in tests])
        print(f"\n{label}: per-query nDCG@10, mean over seeds")
        print("\n| bytes | method | vs | difference | p t-test (Holm) | p Wilcoxon (Holm) | queries better / worse |")
        print("|---|---|---|---|---|---|---|")
        for (m, system, baseline, test), p_t, p_w in zip(tests, corrected, corrected_w):
            print(f"| {m} | {system} | {baseline} | {test.mean_difference:+.4f} | {p_t:.2g} | {p_w:.2g} | "
                  f"{test.improved} / {test.degraded} |")


def print_table(rows: list[dict], float_bytes: int, n_queries: int) -> None:
    """One line per (m, method): means over the seeds; nDCG@10 also its spread (min-max)."""
    print("\n| method | bytes/vector | compression | recall@10 vs exact | nDCG@10 (mean, min-max) | unseen nDCG@10 | "
          "fit s | ms/query | margin vs best FAISS, same seed (mean; wins) | best epochs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for key in dict.fromkeys((r["m"], r["method"]) for r in rows):
        group = [r for r in rows if (r["m"], r["method"]) == key]
        first = group[0]
        ndcg = [r["ndcg"] for r in group]
        margins = [r["margin"] for r in group if r["margin"] is not None and first["m"]]
        margin = f"{np.mean(margins):+.4f}; {sum(x > 0 for x in margins)}/{len(margins)}" if margins else ""
        epochs = ",".join(str(r["epoch"]) for r in group if r.get("epoch") is not None)
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
        exact = next(r for r in part if r["method"] == "exact float32")
        axis.axhline(exact["ndcg"], color="grey", linestyle="--", label="exact float32")
        axis.set(title=f"{name} (test, mean over seeds)", xlabel="bytes per vector", ylabel="nDCG@10")
        axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    print(f"\nplot written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--parts", nargs="+", default=["linear"], choices=["linear", "encoder"],
                        help="linear: the compressor on frozen query vectors; encoder: the retriever (MiniLM trained)")
    parser.add_argument("--m", nargs="+", type=int, default=[16, 32, 48], help="subspaces = bytes per vector")
    parser.add_argument("--encoder-m", type=int, default=32, help="bytes per vector of the encoder rows")
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads (all methods)")
    parser.add_argument("--lr", type=float, default=2e-5, help="Adam learning rate of the centroids (linear part)")
    parser.add_argument("--centroid-lr", type=float, default=2e-5, help="learning rate of the centroids (encoder part)")
    parser.add_argument("--query-lr", type=float, default=3e-4, help="Adam learning rate of the query map")
    parser.add_argument("--encoder-lr", nargs="+", type=float, default=[5e-6, 2e-5, 5e-5],
                        help="candidate encoder learning rates, chosen per variant on held-out training queries")
    parser.add_argument("--variants", nargs="+", default=list(ENCODER_ROWS)[:3], choices=list(ENCODER_ROWS)[:3],
                        help="encoder rows to train (a run per variant and seed; finished runs are reused, so "
                             "long runs split into one call per variant and a last call with all of them)")
    parser.add_argument("--epochs", type=int, default=6, help="encoder epochs (early stopping on held-out queries)")
    parser.add_argument("--train-queries", type=int, default=None, help="train on a seeded subset of the train split")
    parser.add_argument("--holdout", default="documents", choices=["queries", "documents"],
                        help="early-stopping validation: random train queries, or queries with unseen documents")
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
        common.write_json(args.json, args, [{k: v for k, v in row.items() if k != "result"} for row in rows])


if __name__ == "__main__":
    main()
