"""embedlab.metrics.evaluate vs pytrec_eval (trec_eval in C) on synthetic runs, same process.

    python benchmarks/bench_metrics.py [--queries 2000] [--depth 1000] [--repeat 3]

Prints seconds per evaluation of six measures for both, their ratio, and the largest per-query
difference. pytrec_eval is timed on the ``{qid: {doc: score}}`` dicts it takes (conversion from a
Ranking, ``Ranking.to_dict()``, is timed separately); embedlab on the Ranking arrays.
"""

from __future__ import annotations

import argparse
import time

import common
import numpy as np
import pytrec_eval

import embedlab
from embedlab.metrics import evaluate

METRICS = {"nDCG@10": "ndcg_cut_10", "AP": "map", "RR": "recip_rank", "R@100": "recall_100",
           "P@10": "P_10", "Success@10": "success_10"}
TREC = {"ndcg_cut.10", "map", "recip_rank", "recall.100", "P.10", "success.10"}


def synthetic(n_queries: int, depth: int, seed: int = 0) -> tuple[embedlab.Ranking, dict]:
    rng = np.random.default_rng(seed)
    n_docs = 100_000
    doc_ids = np.char.add("doc", np.arange(n_docs).astype(str))
    rows = np.argsort(rng.random((n_queries, n_docs // 50)), axis=1)[:, :depth] * 50 + rng.integers(0, 50)
    scores = -np.sort(-np.round(rng.random((n_queries, depth)), 3), axis=1)  # rounded: ties
    query_ids = np.char.add("q", np.arange(n_queries).astype(str))
    ranking = embedlab.Ranking(query_ids, doc_ids[rows], scores)
    qrels = {}
    for i, qid in enumerate(query_ids.tolist()):
        judged = np.concatenate([rows[i, rng.integers(0, depth, 5)], rng.integers(0, n_docs, 20)])
        qrels[qid] = {doc_ids[d]: int(g) for d, g in zip(judged, rng.integers(0, 4, judged.size))}
    return ranking, qrels


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    common.report_load()
    ranking, qrels = synthetic(args.queries, args.depth)
    ours_s, result = best_of(args.repeat, lambda: evaluate(ranking, qrels, list(METRICS)))
    dict_s, run = best_of(args.repeat, ranking.to_dict)
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, TREC)
    ref_s, reference = best_of(args.repeat, lambda: evaluator.evaluate(run))
    diff = max(abs(result.query_values(m)[q] - reference[q][t]) for m, t in METRICS.items() for q in reference)
    print(f"{args.queries} queries x {args.depth} documents, {len(METRICS)} measures, best of {args.repeat}")
    print(f"{'':<34}{'seconds':>10}{'ratio':>8}")
    print(f"{'pytrec_eval.evaluate (dicts)':<34}{ref_s:>10.3f}{1.0:>8.2f}")
    print(f"{'embedlab evaluate (Ranking)':<34}{ours_s:>10.3f}{ours_s / ref_s:>8.2f}")
    print(f"{'Ranking.to_dict (for pytrec_eval)':<34}{dict_s:>10.3f}{dict_s / ref_s:>8.2f}")
    print(f"max |embedlab - pytrec_eval| per query: {diff:.2e}")


if __name__ == "__main__":
    main()
