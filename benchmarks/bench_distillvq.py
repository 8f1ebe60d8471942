"""Distill-VQ (embedlab-distillvq) vs FAISS IndexIVFPQ and IVF-OPQ at the same nlist, nprobe, m,
nbits and inner-product metric, on MiniLM embeddings of SciFact and python-stdlib (test queries).

Headline: **recall of the teacher's top-k** (exact float inner product) at every nprobe, the quantity
Distill-VQ distils, paired per seed with the FAISS IVFPQ index it starts from (same k-means seed), and
tested over queries (per-query recall averaged over the seeds; t-test and Wilcoxon, Holm-corrected
across nprobes). nDCG@10 is reported on the whole test split and on the unseen subset
(:mod:`embedlab.splits`). Both sides run in this process with one thread. Distill-VQ starts from
exactly FAISS's IVFPQ k-means and distils with the train split's query embeddings (no labels, no
test queries; early stopping on 10% held-out *training* queries); ``--queries docs`` uses document
vectors as pseudo-queries instead. FAISS ``OPQ{m},IVF{nlist},PQ{m}`` (the paper's IVFOPQ baseline)
gets the same nprobe sweep.

    python benchmarks/bench_distillvq.py --seeds 0 1 2 --plot docs/benchmarks/distillvq.png
"""

from __future__ import annotations

import argparse
import time

import common
import faiss
import numpy as np
import torch
from embedlab_distillvq import DistillVQIndex
from embedlab_distillvq.quantizer import faiss_ivfpq

from embedlab.ranking import SearchResult
from embedlab.stats import holm, paired_tests

SETTINGS = {"python-stdlib": 64, "scifact": 256}  # nlist ~ 4 sqrt(n)
SYSTEMS = ("dvq", "ivfpq", "opq")
NAMES = {"dvq": "Distill-VQ", "ivfpq": "FAISS IVFPQ", "opq": "FAISS IVF-OPQ"}


def recall_per_query(truth: np.ndarray, found: np.ndarray, k: int) -> np.ndarray:
    """Per query: the fraction of the teacher's top-k among the first k results."""
    return np.array([len(set(t[:k]) & set(f[:k]) - {-1}) / k for t, f in zip(truth, found)])


def faiss_opq(dim: int, nlist: int, m: int, seed: int) -> faiss.Index:
    index = faiss.index_factory(dim, f"OPQ{m},IVF{nlist},PQ{m}", faiss.METRIC_INNER_PRODUCT)
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
    ivf.cp.seed = ivf.pq.cp.seed = seed
    ivf.cp.min_points_per_centroid = ivf.pq.cp.min_points_per_centroid = 1
    return index


def set_nprobe(index: faiss.Index, nprobe: int) -> None:
    faiss.extract_index_ivf(index).nprobe = nprobe


def run_seed(name: str, nlist: int, seed: int, args: argparse.Namespace, test: common.EncodedSplit,
             train_queries: np.ndarray | None, truth: np.ndarray, unseen: dict) -> dict:
    """Per-query measures of the three systems at every nprobe for one k-means seed."""
    docs, queries = test.docs, test.queries
    fits, indexes = {}, {}
    start = time.perf_counter()
    indexes["ivfpq"] = faiss_ivfpq(docs.shape[1], nlist, args.m, 256, seed)
    indexes["ivfpq"].train(docs)
    indexes["ivfpq"].add(docs)
    fits["ivfpq"] = time.perf_counter() - start
    start = time.perf_counter()
    indexes["opq"] = faiss_opq(docs.shape[1], nlist, args.m, seed)
    indexes["opq"].train(docs)
    indexes["opq"].add(docs)
    fits["opq"] = time.perf_counter() - start
    start = time.perf_counter()
    ours = DistillVQIndex(nlist=nlist, m=args.m, epochs=args.epochs, seed=seed, threads=1, lr_ivf=args.lr_ivf,
                          lr_pq=args.lr_pq, max_train_queries=args.train_queries)
    ours.fit(docs, train_queries)
    ours.build(docs)
    fits["dvq"] = time.perf_counter() - start
    print(f"  seed {seed}: fit s {', '.join(f'{NAMES[s]} {fits[s]:.1f}' for s in SYSTEMS)}; validation ListNet "
          f"loss {ours.history[0]:.4f} -> {min(ours.history):.4f}, best epoch {int(np.argmin(ours.history))} "
          f"of {len(ours.history) - 1}", flush=True)
    probes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= nlist]
    out: dict = {"fits": fits, "best_epoch": int(np.argmin(ours.history)), "probes": {}}
    for nprobe in probes:
        results, times = {}, {}
        for system in ("ivfpq", "opq"):
            set_nprobe(indexes[system], nprobe)
        searches = {"dvq": lambda n=nprobe: ours.search(queries, 100, nprobe=n),
                    "ivfpq": lambda: SearchResult(*indexes["ivfpq"].search(queries, 100)),
                    "opq": lambda: SearchResult(*indexes["opq"].search(queries, 100))}
        for system in SYSTEMS:  # alternated, best of 3 each
            times[system], results[system] = common.best_time(searches[system], 3)
        out["probes"][nprobe] = {s: {"r10": recall_per_query(truth, results[s].indices, 10),
                                     "r100": recall_per_query(truth, results[s].indices, 100),
                                     "ndcg": test.per_query(results[s]),
                                     "ndcg_unseen": test.per_query(results[s], qrels=unseen) if unseen else {},
                                     "ms": 1000 * times[s] / len(queries)} for s in SYSTEMS}
    return out


def summarise(name: str, runs: list[dict], test: common.EncodedSplit, unseen: dict) -> list[dict]:
    """Seed-averaged table per nprobe, with paired tests of Distill-VQ against FAISS IVFPQ."""
    probes = list(runs[0]["probes"])
    rows = []
    for nprobe in probes:
        parts = [r["probes"][nprobe] for r in runs]
        row: dict = {"dataset": name, "nprobe": nprobe}
        for system in SYSTEMS:
            for measure in ("r10", "r100"):
                row[f"{measure}_{system}"] = np.mean([p[system][measure] for p in parts], axis=0)
            for measure in ("ndcg", "ndcg_unseen"):
                keys = list(parts[0][system][measure])
                row[f"{measure}_{system}"] = {q: float(np.mean([p[system][measure][q] for p in parts])) for q in keys}
            row[f"ms_{system}"] = float(np.median([p[system]["ms"] for p in parts]))
        rows.append(row)
    for measure in ("r10", "r100"):
        tests = [paired_tests(r[f"{measure}_dvq"], r[f"{measure}_ivfpq"]) for r in rows]
        for row, test_, p in zip(rows, tests, holm([t.p_ttest for t in tests])):
            row[f"{measure}_test"], row[f"{measure}_p"] = test_, float(p)
    print(f"\n{name}: mean over {len(runs)} seed(s), {len(test.query_ids)} test queries "
          f"({len(unseen)} unseen); delta = Distill-VQ - FAISS IVFPQ of the same seed, p = paired t-test over "
          "queries, Holm across nprobes; better/worse = queries")
    print("| nprobe | R@10 DVQ | IVFPQ | IVF-OPQ | delta (p; better/worse) | R@100 DVQ | IVFPQ | IVF-OPQ | "
          "delta (p; better/worse) | nDCG@10 DVQ / IVFPQ / IVF-OPQ | unseen nDCG@10 DVQ / IVFPQ / IVF-OPQ | "
          "ms/q DVQ / IVFPQ |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---|---|---|---|")
    for row in rows:
        cells = [f"{row['nprobe']}"]
        for measure in ("r10", "r100"):
            t = row[f"{measure}_test"]
            cells += [f"{row[f'{measure}_{s}'].mean():.4f}" for s in SYSTEMS]
            cells.append(f"{100 * t.mean_difference:+.1f} pt ({row[f'{measure}_p']:.2g}; {t.improved}/{t.degraded})")
        for measure in ("ndcg", "ndcg_unseen"):
            means = [np.mean(list(row[f"{measure}_{s}"].values())) if row[f"{measure}_{s}"] else float("nan")
                     for s in SYSTEMS]
            cells.append(" / ".join(f"{m:.4f}" for m in means))
        cells.append(f"{row['ms_dvq']:.3f} / {row['ms_ivfpq']:.3f} ({row['ms_dvq'] / row['ms_ivfpq']:.1f}x)")
        print("| " + " | ".join(cells) + " |")
    fits = {s: np.mean([r["fits"][s] for r in runs]) for s in SYSTEMS}
    print(f"fit s (mean): {', '.join(f'{NAMES[s]} {fits[s]:.1f}' for s in SYSTEMS)}; Distill-VQ best epochs "
          f"{[r['best_epoch'] for r in runs]} (0 = the FAISS IVFPQ start)")
    return rows


def run(name: str, nlist: int, args: argparse.Namespace) -> list[dict]:
    dataset = common.load(name)
    test, train = common.encode_split(dataset, "test"), common.encode_split(dataset, "train")
    train_queries = train.queries if args.queries == "train" else None
    truth = np.argsort(-(test.queries @ test.docs.T), axis=1, kind="stable")[:, :100]
    unseen = test.unseen_qrels(train)
    exact = SearchResult(*_topk(test.queries @ test.docs.T, 100))
    print(f"\n{name}: {len(test.docs)} docs, nlist={nlist}, m={args.m}x8 bits ({test.docs.shape[1] * 4 // args.m}x "
          f"compression), exact float nDCG@10 {test.ndcg(exact):.4f} (unseen "
          f"{np.mean(list(test.per_query(exact, qrels=unseen).values())) if unseen else float('nan'):.4f}); "
          f"{'document pseudo-queries' if train_queries is None else f'{len(train_queries)} train queries'}",
          flush=True)
    runs = [run_seed(name, nlist, seed, args, test, train_queries, truth, unseen) for seed in args.seeds]
    return summarise(name, runs, test, unseen)


def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(2, len(names), figsize=(5 * len(names), 7.5), squeeze=False)
    for col, name in enumerate(names):
        part = [r for r in rows if r["dataset"] == name]
        x = [r["nprobe"] for r in part]
        for row_index, measure in enumerate(("r10", "r100")):
            ax = axes[row_index, col]
            for system, style in zip(SYSTEMS, ("o-", "s--", "^:")):
                ax.plot(x, [r[f"{measure}_{system}"].mean() for r in part], style, label=NAMES[system])
            ax.set_xscale("log", base=2)
            ax.set(title=name, xlabel="nprobe", ylabel=f"recall@{measure[1:]} of the teacher's top-{measure[1:]}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--queries", choices=("train", "docs"), default="train")
    parser.add_argument("--train-queries", type=int, default=4000, help="at most this many (seeded sample)")
    parser.add_argument("--lr-ivf", type=float, default=3e-4)
    parser.add_argument("--lr-pq", type=float, default=3e-5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--plot", default="")
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    rows = [row for name in args.datasets for row in run(name, SETTINGS[name], args)]
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
