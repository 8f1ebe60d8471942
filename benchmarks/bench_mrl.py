"""Matryoshka (MRL) fine-tuning against plain fine-tuning and zero-shot MiniLM, truncated to prefix
dimensions: nDCG@10 at 384, 256, 128, 96 (not a trained prefix), 64, 48 (not trained) and 32
dimensions (prefixes re-normalised), and the share of the full-dimension nDCG@10 each keeps. The
Qwen3-VL-Embedding check: MRL keeps >= 90 % at 64 dimensions, more than plain truncation of the
same fine-tuning without MRL (the supervised control: same data, steps and hyper-parameters).

Each ``--configs`` entry is a ``finetune`` recipe from bench_train.py (``infonce``, ``matryoshka``)
or ``qwen3`` / ``qwen3-matryoshka`` (the report's masked five-term InfoNCE, alone and under MRL),
trained on a seeded sample of ``--train-queries`` training queries, early-stopped on held-out
training queries; finished trainings and the test encodings of bench_train.py's pipelines (same
recipe) are reused from the embedlab cache, so after bench_train.py this costs only the searches.

    python benchmarks/bench_mrl.py --train-queries 640 --set lr=5e-05 train_max_length=64 eval_steps=10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import bench_train
import common
import numpy as np
from embedlab_train import FineTunedEncoder

from embedlab import Ranking
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate
from embedlab.splits import unseen_qrels
from embedlab.stats import paired_tests

DIMS = (384, 256, 128, 96, 64, 48, 32)


def truncated_ranking(docs: np.ndarray, queries: np.ndarray, dim: int, split, doc_ids) -> Ranking:
    """Exact top 100 with both sides cut to ``dim`` coordinates and re-normalised."""
    d = docs[:, :dim] / np.linalg.norm(docs[:, :dim], axis=1, keepdims=True)
    q = queries[:, :dim] / np.linalg.norm(queries[:, :dim], axis=1, keepdims=True)
    scores = q @ d.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    return Ranking(split.queries.ids, doc_ids[top], np.take_along_axis(scores, top, axis=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="python-stdlib", choices=sorted(bench_train.SPLITS))
    parser.add_argument("--configs", nargs="+", default=["infonce", "matryoshka"], choices=sorted(bench_train.CONFIGS))
    parser.add_argument("--train-queries", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="finetune parameters for every config (JSON values), e.g. lr=5e-05")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    common.report_load("before")
    dataset = common.load(args.dataset)
    train_name, test_name = bench_train.SPLITS[args.dataset]
    test = dataset.split(test_name)
    unseen = unseen_qrels(test.qrels, dataset.split(train_name).qrels)
    cache, doc_ids = EmbeddingCache(), np.asarray(dataset.corpus.ids)
    systems = {"zero-shot": (bench_train.zero_shot(args), None)}
    records = {}
    for name in args.configs:  # trained by pipeline_vectors' pipeline (or its finished run reused)
        systems[name] = (FineTunedEncoder(**bench_train.finetune_params(name, args)), train_name)
    rows, per_query = [], {}
    for name, (encoder, trained_on) in systems.items():
        started = time.perf_counter()
        docs, queries = common.pipeline_vectors(encoder, dataset, test_name, trained_on, cache)
        if trained_on:
            records[name] = {"params": bench_train.finetune_params(name, args), "record": encoder.training_record,
                             "seconds": time.perf_counter() - started}
            print(f"{name}: trained ({encoder.training_record.get('steps')} steps, held-out nDCG@10 "
                  f"{encoder.training_record.get('validation_ndcg10')})", flush=True)
        row = {"system": name}
        for dim in DIMS:
            result = evaluate(truncated_ranking(docs, queries, dim, test, doc_ids), test.qrels, ["nDCG@10"])
            row[dim] = result.aggregates["nDCG@10"]
            per_query[(name, dim)] = result.query_values("nDCG@10")
            if unseen:
                row[f"unseen-{dim}"] = float(np.mean([per_query[(name, dim)][q] for q in unseen]))
        rows.append(row)
    print(f"\n{args.dataset}: {args.train_queries or 'all'} training queries, {len(test.queries)} test queries; "
          "nDCG@10 "
          "(share of the system's own full-dimension value)")
    print("| system | " + " | ".join(f"{d} d" for d in DIMS) + " |")
    print("|---|" + "---|" * len(DIMS))
    for row in rows:
        cells = [f"{row[d]:.4f} ({row[d] / row[384]:.1%})" for d in DIMS]
        print(f"| {row['system']} | " + " | ".join(cells) + " |")
    tests = {}
    for name in args.configs:
        for dim in (384, 64):
            for base in ("zero-shot", *[c for c in args.configs if c != name]):
                result = paired_tests(per_query[(name, dim)], per_query[(base, dim)])
                tests[f"{name} vs {base} @{dim}"] = {"p_ttest": result.p_ttest, "p_wilcoxon": result.p_wilcoxon,
                                                    "mean": result.mean_system, "baseline": result.mean_baseline}
                print(f"{name} vs {base} at {dim} d: {result.mean_system:.4f} vs {result.mean_baseline:.4f}, "
                      f"p (t) = {result.p_ttest:.2g}, p (Wilcoxon) = {result.p_wilcoxon:.2g}")
    if args.json:
        common.write_json(args.json, args, {"rows": rows, "tests": tests, "training": records})


if __name__ == "__main__":
    main()
