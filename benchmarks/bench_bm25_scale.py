"""BM25 query time at scale: embedlab's ``inverted`` index (and the ``exact`` index) against bm25s's
numba backend on pypi-summaries, one thread, paired and interleaved in one process.

    python benchmarks/bench_bm25_scale.py                      # 781,610 documents, 500 queries
    python benchmarks/bench_bm25_scale.py --docs 100000 --repeats 7

Documents: the first ``--docs`` rows of pypi-summaries; queries: the last ``--queries`` rows (never
indexed). Both sides use bm25s's defaults (k1 1.5, b 0.75, lucene idf, lowercase, scikit-learn's
token regex, English stopwords, no stemming). Timed: retrieving the top-10 of all queries from
already tokenised/encoded queries (ours: ``index.search`` on the query term counts; bm25s:
``retrieve`` on token ids, ``n_threads=1``); the query preparation of each side is reported
separately. Repetitions alternate the order of the two sides; the table gives the median seconds
and the median of the per-repetition ratios. Agreement: identical top-10 document sets per query
and the largest relative score difference (bm25s keeps float32 weights; we compute them in float64
before storing float32).
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from pathlib import Path

import bm25s
import numpy as np
from embedlab_bm25 import BM25, InvertedIndex
from threadpoolctl import threadpool_limits

from embedlab.index import ExactIndex
from embedlab.threads import numba_threads

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pypi-summaries" / "pypi-summaries.tsv.gz"


def read_texts() -> list[str]:
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        column = handle.readline().rstrip("\n").split("\t").index("summary")
        return [line.rstrip("\n").split("\t")[column] for line in handle]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=781_610)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--with-exact", action="store_true", help="also time the core exact index (slow)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    texts = read_texts()
    documents, query_texts = texts[:-args.queries][:args.docs], texts[-args.queries:]

    build_ours, (encoder, index, exact) = timed(lambda: build_embedlab(documents, args.with_exact))
    build_ref, retriever = timed(lambda: build_bm25s(documents))
    prep_ours, query_vectors = timed(lambda: encoder.encode_queries(query_texts))
    prep_ref, query_ids = timed(lambda: bm25s_query_ids(retriever, query_texts))
    print(f"{len(documents)} documents, {len(query_texts)} queries, k={args.k}, one thread; build s: ours "
          f"{build_ours:.1f}, bm25s {build_ref:.1f}; query preparation s: ours {prep_ours:.3f}, bm25s {prep_ref:.3f}")

    def ours():
        return index.search(query_vectors, args.k)

    def reference():
        return retriever.retrieve(query_ids, k=args.k, n_threads=1, show_progress=False)

    with threadpool_limits(1), numba_threads(1):
        ours(), reference()  # compile / warm up
        times: dict[str, list[float]] = {"ours": [], "bm25s": []}
        for rep in range(args.repeats):
            pairs = [("ours", ours), ("bm25s", reference)]
            for name, fn in pairs if rep % 2 == 0 else pairs[::-1]:
                times[name].append(timed(fn)[0])
        found = ours()
        ref_ids, ref_scores = reference()
        exact_s = timed(lambda: exact.search(query_vectors, args.k))[0] if exact is not None else float("nan")
    ours_sorted = np.sort(found.scores, axis=1)[:, ::-1]
    scored = ref_scores > 0
    rel = np.abs(ours_sorted - ref_scores)[scored] / ref_scores[scored]
    same = np.mean([same_top_k(a, s, b, t) for a, s, b, t in zip(found.indices, found.scores, ref_ids, ref_scores)])
    ratios = [r / o for o, r in zip(times["ours"], times["bm25s"])]
    print(f"{'side':<10} {'median s':>9} {'best s':>7} {'QPS':>8}")
    for name in ("ours", "bm25s"):
        med = statistics.median(times[name])
        print(f"{name:<10} {med:>9.3f} {min(times[name]):>7.3f} {len(query_texts) / med:>8.0f}")
    if exact is not None:
        print(f"{'exact':<10} {exact_s:>9.3f} (core exact index over the same CSR vectors, one run)")
    print(f"speed ours / bm25s (paired median): {statistics.median(ratios):.2f}x; same top-{args.k} "
          f"(up to the order of tied scores) for {same:.3f} of queries; max rel score diff {rel.max():.1e}; "
          f"load average after: {os.getloadavg()[0]:.2f}")


def same_top_k(ours_ids, ours_scores, ref_ids, ref_scores, tolerance: float = 1e-6) -> bool:
    """The same positive-scored documents, except where a tie at the k-th score lets either side
    pick among equally scored documents (pypi-summaries has many duplicate summaries)."""
    ours_sorted, ref_sorted = np.sort(ours_scores)[::-1], np.sort(ref_scores)[::-1]
    if not np.allclose(ours_sorted, ref_sorted, rtol=tolerance, atol=0):
        return False
    cut = ref_sorted[-1] * (1 + tolerance)  # documents clearly above the k-th score must agree
    clear_ours = {d for d, s in zip(ours_ids, ours_scores) if s > cut and s > 0}
    clear_ref = {d for d, s in zip(ref_ids, ref_scores) if s > cut and s > 0}
    return clear_ours == clear_ref


def build_embedlab(documents: list[str], with_exact: bool):
    encoder = BM25().fit(documents)
    vectors = encoder.encode_documents(documents)
    index = InvertedIndex()
    index.build(vectors)
    exact = None
    if with_exact:
        exact = ExactIndex()
        exact.build(vectors)
    return encoder, index, exact


def build_bm25s(documents: list[str]):
    retriever = bm25s.BM25(backend="numba")
    retriever.index(bm25s.tokenize(documents, show_progress=False), show_progress=False)
    return retriever


def bm25s_query_ids(retriever, queries: list[str]) -> list[list[int]]:
    tokens = bm25s.tokenize(queries, return_ids=False, show_progress=False)
    ids = [retriever.get_tokens_ids(q) for q in tokens]
    empty = retriever.vocab_dict.get("")
    return [q if q else ([empty] if empty is not None else [0]) for q in ids]


if __name__ == "__main__":
    main()
