"""Throughput of embedlab's ExactIndex against faiss.IndexFlatIP, same process, same threads.

    python benchmarks/bench_exact_index.py                     # 100k x 384, 1000 queries, k=10
    python benchmarks/bench_exact_index.py --sweep 2048 4096 8192 16384

Repetitions alternate between the two libraries (paired), so load from other processes hits
both alike; the table reports median and best QPS and the ratio ours / FAISS.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import common
import faiss
import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits
from tqdm import tqdm

from embedlab.index import ExactIndex


def unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(search, queries: np.ndarray) -> tuple[float, object]:
    start = time.perf_counter()
    result = search(queries)
    return time.perf_counter() - start, result


def compare(ours: ExactIndex, reference: faiss.Index, queries: np.ndarray, k: int,
            repeats: int) -> dict[str, float]:
    """Paired, alternating repetitions after one warm-up search each."""
    run_ours = lambda q: ours.search(q, k)  # noqa: E731
    run_faiss = lambda q: reference.search(q, k)  # noqa: E731
    _, result = timed(run_ours, queries)
    _, (distances, ids) = timed(run_faiss, queries)
    times: dict[str, list[float]] = {"ours": [], "faiss": []}
    for rep in tqdm(range(repeats), desc=f"block_size={ours.config.block_size}", leave=False):
        order = [("ours", run_ours), ("faiss", run_faiss)]
        for name, run in order if rep % 2 == 0 else order[::-1]:
            times[name].append(timed(run, queries)[0])
    n = queries.shape[0]
    overlap = np.mean([np.intersect1d(a, b).size / k for a, b in zip(result.indices, ids)])
    return {"ours_median": n / statistics.median(times["ours"]), "ours_best": n / min(times["ours"]),
            "faiss_median": n / statistics.median(times["faiss"]), "faiss_best": n / min(times["faiss"]),
            "paired_ratio": statistics.median(f / o for o, f in zip(times["ours"], times["faiss"])),
            "identical_top_k": float((result.indices == ids).mean()), "overlap": float(overlap),
            "max_score_diff": float(np.abs(result.scores - distances).max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--sweep", type=int, nargs="*", default=[ExactIndex.Config().block_size],
                        help="block sizes to try (default: the ExactIndex default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    common.report_load()

    rng = np.random.default_rng(args.seed)
    docs, queries = unit_vectors(rng, args.docs, args.dim), unit_vectors(rng, args.queries, args.dim)
    faiss.omp_set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        print(f"{args.docs} x {args.dim} float32 unit vectors, {args.queries} queries, k={args.k}, "
              f"inner product, {args.repeats} paired repetitions")
        print(f"threads: faiss.omp_get_max_threads()={faiss.omp_get_max_threads()}; "
              + "; ".join(f"{i['internal_api']} {os.path.basename(i['filepath'])} "
                          f"({i.get('architecture', '-')}): {i['num_threads']}" for i in threadpool_info()))
        print("OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)")
              + " OPENBLAS_L2_SIZE=" + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"))
        reference = faiss.IndexFlatIP(args.dim)
        reference.add(docs)
        header = (f"{'block_size':>10} {'ours QPS med':>12} {'best':>8} {'FAISS QPS med':>13} {'best':>8} "
                  f"{'ratio med':>9} {'ratio best':>10} {'paired':>7} {'same top-k':>10} {'max |ds|':>9}")
        print(header)
        for block_size in args.sweep:
            ours = ExactIndex(metric="ip", block_size=block_size)
            ours.build(docs)
            r = compare(ours, reference, queries, args.k, args.repeats)
            print(f"{block_size:>10} {r['ours_median']:>12.0f} {r['ours_best']:>8.0f} "
                  f"{r['faiss_median']:>13.0f} {r['faiss_best']:>8.0f} "
                  f"{r['ours_median'] / r['faiss_median']:>9.2f} {r['ours_best'] / r['faiss_best']:>10.2f} "
                  f"{r['paired_ratio']:>7.2f} {r['identical_top_k']:>10.4f} {r['max_score_diff']:>9.1e}")
    if "OPENBLAS_CORETYPE" in os.environ or "OPENBLAS_L2_SIZE" in os.environ:
        print("second run without the machine's OpenBLAS overrides: env -u OPENBLAS_CORETYPE "
              "-u OPENBLAS_L2_SIZE python benchmarks/bench_exact_index.py")


if __name__ == "__main__":
    main()
