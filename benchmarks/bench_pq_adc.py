"""ADC (lookup-table) search over PQ codes: embedlab's core ``pq`` compressor in the core
``ExactIndex`` against FAISS ``IndexPQ`` holding the *same* codebooks and codes.

Both score every query against every code by summing ``m`` table look-ups and keep the top 10;
the script checks that they return the same top-10 scores, then times both in the same process and
environment and prints the ratio. MiniLM embeddings of a BEIR corpus (shared cache) or the 782k
pypi-summaries texts are too slow to encode here, so ``--tile`` repeats the corpus' codes to reach
a larger index (the scan cost does not depend on what the codes are).

    python benchmarks/bench_pq_adc.py --dataset scifact --m 16 32 48 --tile 1 10 --threads 1
"""

from __future__ import annotations

import argparse
import os

import common
import faiss
import numpy as np

import embedlab
from embedlab.index import ExactIndex


def faiss_index(compressor: object, codes: np.ndarray, dim: int) -> faiss.IndexPQ:
    """A FAISS ``IndexPQ`` (inner product) with our codebooks, holding exactly our codes."""
    books = compressor.codebooks
    index = faiss.IndexPQ(dim, books.m, 8, faiss.METRIC_INNER_PRODUCT)
    faiss.copy_array_to_vector(books.centroids.ravel(), index.pq.centroids)
    index.is_trained = True
    index.codes.resize(codes.size)
    faiss.copy_array_to_vector(codes.ravel(), index.codes)
    index.ntotal = len(codes)
    return index


def run(docs: np.ndarray, queries: np.ndarray, m: int, tile: int, repeats: int) -> dict:
    compressor = embedlab.create("compressor", "pq", m=m, seed=0).fit(docs)
    codes = np.tile(compressor.encode(docs), (tile, 1))
    ours = ExactIndex(metric="ip")
    ours.use_compressor(compressor)
    ours.build(np.tile(docs, (tile, 1)))
    reference = faiss_index(compressor, codes, docs.shape[1])
    ours_s, ours_result = common.best_time(lambda: ours.search(queries, 10), repeats)
    faiss_s, (faiss_scores, faiss_ids) = common.best_time(lambda: reference.search(queries, 10), repeats)
    # Ties (tiled codes) make the ids ambiguous, so compare the top-10 scores, rank by rank.
    difference = float(np.abs(ours_result.scores - faiss_scores).max())
    return {"m": m, "codes": len(codes), "ours_ms": 1000 * ours_s / len(queries),
            "faiss_ms": 1000 * faiss_s / len(queries), "difference": difference}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--m", nargs="+", type=int, default=[16, 32, 48])
    parser.add_argument("--tile", nargs="+", type=int, default=[1, 10], help="repeat the corpus' codes N times")
    parser.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads (numpy's BLAS is not used)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(args.threads)
    split = common.encode_split(common.load(args.dataset), "test")
    print("OPENBLAS_CORETYPE=" + os.environ.get("OPENBLAS_CORETYPE", "(unset)")
          + " OPENBLAS_L2_SIZE=" + os.environ.get("OPENBLAS_L2_SIZE", "(unset)"))
    print(f"{args.dataset}: {len(split.docs)} documents, {len(split.queries)} queries, "
          f"{args.threads} FAISS thread(s)\n")
    print("| m (bytes) | codes | ours ms/query | FAISS ms/query | ours / FAISS | max top-10 score difference |")
    print("|---|---|---|---|---|---|")
    for tile in args.tile:
        for m in args.m:
            row = run(split.docs, split.queries, m, tile, args.repeats)
            print(f"| {m} | {row['codes']:,} | {row['ours_ms']:.3f} | {row['faiss_ms']:.3f} | "
                  f"{row['ours_ms'] / row['faiss_ms']:.2f}x | {row['difference']:.1e} |")


if __name__ == "__main__":
    main()
