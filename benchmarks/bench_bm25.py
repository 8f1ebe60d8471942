"""embedlab-bm25 against bm25s on real BEIR collections: score agreement, nDCG@10 and time.

Run from the repository root::

    python benchmarks/bench_bm25.py [--datasets cranfield scifact] [--repeats 3]

For each dataset and BM25 variant it scores every judged query against the whole corpus with both
implementations (same k1, b, variant and tokenisation) and prints the largest absolute and relative
score difference, the mean top-10 overlap, nDCG@10 of both, and the time of each side (best of
``--repeats``) with the ratio ours / bm25s. Both run in this process and environment.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import bm25s
import common
import numpy as np
from embedlab_bm25 import BM25

import embedlab
from embedlab.datasets.beir import load_beir

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SPLIT = {"cranfield": "test", "scifact": "test"}


def best_time(fn, *args, repeats: int):
    """(result of the last call ``fn(*args)``, best wall time in seconds)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


def ours(documents, queries, method):
    encoder = BM25(method=method).fit(documents)
    return (encoder.encode_queries(queries) @ encoder.encode_documents(documents).T).toarray()


def reference(documents, queries, method):
    retriever = bm25s.BM25(method=method)
    retriever.index(bm25s.tokenize(documents, show_progress=False), show_progress=False)
    tokens = bm25s.tokenize(queries, return_ids=False, show_progress=False)
    return np.stack([retriever.get_scores(q) if q else np.zeros(len(documents), np.float32)
                     for q in tokens])


def ndcg10(scores, split, corpus) -> float:
    order = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    ranking = embedlab.Ranking(split.queries.ids, corpus.ids[order], np.take_along_axis(scores, order, 1))
    return float(embedlab.evaluate(ranking, split.qrels, ["nDCG@10"])["nDCG@10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(SPLIT))
    parser.add_argument("--methods", nargs="+", default=["lucene", "robertson", "atire"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    common.report_load()
    header = (f"{'dataset':<10} {'method':<10} {'max|diff|':>10} {'max rel':>9} {'top10':>6} "
              f"{'nDCG@10':>8} {'ref nDCG':>8} {'ours s':>7} {'bm25s s':>7} {'ratio':>6}")
    print(header)
    print("-" * len(header))
    for name in args.datasets:
        dataset = load_beir(DATA / name / "beir")
        split = dataset.split(SPLIT[name])
        documents, queries = dataset.corpus.documents(), list(split.queries.texts)
        for method in args.methods:
            mine, t_ours = best_time(ours, documents, queries, method, repeats=args.repeats)
            ref, t_ref = best_time(reference, documents, queries, method, repeats=args.repeats)
            diff = np.abs(mine - ref)
            scored = np.abs(ref) > 1e-6
            rel = diff[scored] / np.abs(ref[scored])
            top = [np.argsort(-s, axis=1, kind="stable")[:, :10] for s in (mine, ref)]
            overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(*top)])
            print(f"{name:<10} {method:<10} {diff.max():>10.2e} {rel.max():>9.2e} {overlap:>6.3f} "
                  f"{ndcg10(mine, split, dataset.corpus):>8.4f} {ndcg10(ref, split, dataset.corpus):>8.4f} "
                  f"{t_ours:>7.2f} {t_ref:>7.2f} {t_ours / t_ref:>6.2f}")


if __name__ == "__main__":
    main()
