"""Where the exact index's search time goes, next to FAISS ``IndexFlatIP`` (same process, same threads).

    python benchmarks/profile_exact_index.py --docs 100000 --threads 1 --blocks 1024 8192 --batches 128 1024

For each document block size and query batch (``embedlab.index.exact.SCORE_BUDGET`` set to their
product), times (median of ``--repeats``, after a warm-up) the whole
``ExactIndex.search`` and its parts run alone over the same blocks: the GEMM only (queries x block
into a reused buffer), the GEMM plus the threshold comparison of the top-k selection, and the
top-k selection alone on precomputed blocks (``TopK.push``); and ``faiss.IndexFlatIP.search``.
"Other" = search - GEMM - selection (validation, copies, Python overhead). Random unit vectors as
in ``bench_exact_index.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import common
import faiss
import numpy as np
from bench_exact_index import unit_vectors
from threadpoolctl import threadpool_limits

import embedlab.index.exact as exact
from embedlab.index import ExactIndex
from embedlab.index.topk import TopK


def median_time(repeats: int, run) -> float:  # type: ignore[no-untyped-def]
    """Median wall time of ``repeats`` calls of ``run`` after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--blocks", type=int, nargs="+", default=[ExactIndex.Config().block_size])
    parser.add_argument("--batches", type=int, nargs="+",
                        default=[exact.SCORE_BUDGET // ExactIndex.Config().block_size],
                        help="queries scored per block (the score budget is block x batch)")
    args = parser.parse_args()
    common.report_load()
    rng = np.random.default_rng(0)
    docs, queries = unit_vectors(rng, args.docs, args.dim), unit_vectors(rng, args.queries, args.dim)
    faiss.omp_set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        reference = faiss.IndexFlatIP(args.dim)
        reference.add(docs)
        faiss_s = median_time(args.repeats, lambda: reference.search(queries, args.k))
        print(f"{args.docs} x {args.dim}, {args.queries} queries, k={args.k}, {args.threads} thread(s); "
              f"FAISS {faiss_s:.3f} s ({args.queries / faiss_s:.0f} QPS)")
        print("| block | query batch | search s | vs FAISS | GEMM s | GEMM + compare s | top-k alone s | other s |")
        print("|---|---|---|---|---|---|---|---|")
        for block in args.blocks:
            for batch in args.batches:
                row = profile(docs, queries, args.k, block, min(batch, args.queries), args.repeats)
                print(f"| {block} | {min(batch, args.queries)} | {row['search']:.3f} | "
                      f"{faiss_s / row['search']:.2f}x | {row['gemm']:.3f} ({row['gemm'] / row['search']:.0%}) | "
                      f"{row['compare']:.3f} | {row['select']:.3f} ({row['select'] / row['search']:.0%}) | "
                      f"{row['search'] - row['gemm'] - row['select']:.3f} |")


def profile(docs: np.ndarray, queries: np.ndarray, k: int, block: int, batch: int, repeats: int) -> dict[str, float]:
    """Seconds of the search and of its parts with documents in blocks of ``block`` and queries in
    batches of ``batch`` (``SCORE_BUDGET`` = their product)."""
    exact.SCORE_BUDGET = block * batch
    index = ExactIndex(block_size=block)
    index.build(docs)
    n_queries, n_docs = queries.shape[0], docs.shape[0]
    buffer = np.empty(batch * block, np.float32)
    spans = [(s, min(s + block, n_docs)) for s in range(0, n_docs, block)]
    batches = [(q0, min(q0 + batch, n_queries)) for q0 in range(0, n_queries, batch)]

    def gemm(compare: bool = False) -> None:
        cut = np.zeros(batch, np.float32)
        for s, e in spans:
            for q0, q1 in batches:
                out = buffer[:(q1 - q0) * (e - s)].reshape(q1 - q0, e - s)
                np.matmul(queries[q0:q1], docs[s:e].T, out=out)
                if compare:
                    np.greater(out, cut[:q1 - q0, None])

    # the selection alone on blocks computed once (the first blocks, up to 1 GiB of scores)
    sample = spans[:max(1, min(len(spans), (1 << 30) // (4 * n_queries * block)))]
    blocks = [queries @ docs[s:e].T for s, e in sample]

    def select() -> None:
        top = TopK(n_queries, k)
        for (s, e), scores in zip(sample, blocks):
            for q0, q1 in batches:
                top.push(scores[q0:q1], np.arange(s, e), slice(q0, q1))

    return {"search": median_time(repeats, lambda: index.search(queries, k)), "gemm": median_time(repeats, gemm),
            "compare": median_time(repeats, lambda: gemm(True)),
            "select": median_time(repeats, select) * len(spans) / len(sample)}

if __name__ == "__main__":
    main()
