"""Distill-VQ (embedlab-distillvq) vs FAISS IndexIVFPQ at the same nlist, nprobe, m, nbits and
inner-product metric, on MiniLM embeddings of SciFact and python-stdlib (test queries).

Both sides run in this process with one thread. Distill-VQ starts from exactly FAISS's IVFPQ
k-means (same seed) and distils with the train split's query embeddings (no labels, no test
queries; ``--queries docs`` uses document vectors as pseudo-queries instead).

    python benchmarks/bench_distillvq.py [--epochs 5] [--queries train] [--plot docs/benchmarks/distillvq.png]
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

SETTINGS = {"python-stdlib": 64, "scifact": 256}  # nlist ~ 4 sqrt(n)


def run(name: str, nlist: int, args: argparse.Namespace) -> list[dict]:
    split = common.encode_split(common.load(name), "test")
    docs, queries = split.docs, split.queries
    train_queries = common.encode_split(common.load(name), "train").queries if args.queries == "train" else None
    truth = np.argsort(-(queries @ docs.T), axis=1)[:, :100]
    exact_ndcg = split.ndcg(SearchResult(*_topk(queries @ docs.T, 100)))
    start = time.perf_counter()
    reference = faiss_ivfpq(docs.shape[1], nlist, args.m, 256, args.seed)
    reference.train(docs)
    reference.add(docs)
    faiss_fit = time.perf_counter() - start
    start = time.perf_counter()
    ours = DistillVQIndex(nlist=nlist, m=args.m, epochs=args.epochs, seed=args.seed, threads=1,
                          lr_ivf=args.lr_ivf, lr_pq=args.lr_pq, max_train_queries=args.train_queries)
    ours.fit(docs, train_queries)
    ours.build(docs)
    our_fit = time.perf_counter() - start
    print(f"\n{name}: {len(docs)} docs, {len(queries)} queries, nlist={nlist}, m={args.m}x8 bits; "
          f"exact float nDCG@10={exact_ndcg:.4f}; validation ListNet loss {ours.history[0]:.4f} -> "
          f"{min(ours.history):.4f} over {len(ours.history) - 1} epochs "
          f"({'doc pseudo-queries' if train_queries is None else f'{len(train_queries)} train queries'})")
    float_bytes = docs.shape[1] * 4
    print(f"bytes/vector: distillvq {ours.bytes_per_vector} faiss {reference.code_size} "
          f"(compression {float_bytes / ours.bytes_per_vector:.0f}x vs float32); "
          f"fit s: distillvq {our_fit:.1f} faiss {faiss_fit:.1f} (ratio {our_fit / faiss_fit:.1f}x)")
    print(f"{'nprobe':>6} | {'R@10 dvq':>8} {'faiss':>6} | {'R@100 dvq':>9} {'faiss':>6} | "
          f"{'nDCG@10 dvq':>11} {'faiss':>6} | {'ms/q dvq':>8} {'faiss':>6} {'ratio':>5}")
    rows = []
    probes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= nlist]
    for nprobe in probes:
        reference.nprobe = nprobe
        t_ours, ours_result = common.best_time(lambda n=nprobe: ours.search(queries, 100, nprobe=n), 3)
        t_ref, (scores, ids) = common.best_time(lambda: reference.search(queries, 100), 3)
        row = {"dataset": name, "nprobe": nprobe,
               "r10": (common.recall_at_k(truth, ours_result.indices, 10), common.recall_at_k(truth, ids, 10)),
               "r100": (common.recall_at_k(truth, ours_result.indices, 100), common.recall_at_k(truth, ids, 100)),
               "ndcg": (split.ndcg(ours_result), split.ndcg(SearchResult(scores, ids))),
               "ms": (1000 * t_ours / len(queries), 1000 * t_ref / len(queries))}
        rows.append(row)
        print(f"{nprobe:>6} | {row['r10'][0]:>8.4f} {row['r10'][1]:>6.4f} | {row['r100'][0]:>9.4f} "
              f"{row['r100'][1]:>6.4f} | {row['ndcg'][0]:>11.4f} {row['ndcg'][1]:>6.4f} | "
              f"{row['ms'][0]:>8.3f} {row['ms'][1]:>6.3f} {row['ms'][0] / row['ms'][1]:>5.1f}")
    return rows


def _topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4))
    for ax, name in zip(np.atleast_1d(axes), names):
        part = [r for r in rows if r["dataset"] == name]
        x = [r["nprobe"] for r in part]
        ax.plot(x, [r["r10"][0] for r in part], "o-", label="Distill-VQ (ours)")
        ax.plot(x, [r["r10"][1] for r in part], "s--", label="FAISS IVFPQ")
        ax.set_xscale("log", base=2)
        ax.set(title=name, xlabel="nprobe", ylabel="recall@10 vs exact")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SETTINGS))
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--queries", choices=("train", "docs"), default="train")
    parser.add_argument("--train-queries", type=int, default=4000, help="at most this many (seeded sample)")
    parser.add_argument("--lr-ivf", type=float, default=3e-4)
    parser.add_argument("--lr-pq", type=float, default=3e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", default="docs/benchmarks/distillvq.png")
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(1)
    torch.set_num_threads(1)
    rows = [row for name in args.datasets for row in run(name, SETTINGS[name], args)]
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
