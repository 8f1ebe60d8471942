"""CoRNStack's data curation on real training pairs (embedlab-cornstack):

``filter``: a ``--noise`` share of the (query, positive) pairs of each dataset's training split gets a
random wrong positive (CoRNStack's noisy pairs); the ``dual-consistency`` filter with zero-shot MiniLM
(ONNX, exact cosine) should drop >= 80 % of them while losing <= 10 % of the clean pairs. Swept over
the rank criterion ``top_k`` and the score criterion ``min_score`` (None: rank only, KaLM's
``rank-consistency``); the paper's setting is top 2 and 0.7. Seeds vary the injected noise.

``sampler``: the mean first-stage rank of the negatives the ``softmax`` sampler draws from MiniLM's top
100, per temperature: it should fall monotonically as the temperature falls (0 = the top ``count``).

    python benchmarks/bench_cornstack.py --datasets cosqa python-stdlib scifact --seeds 0 1 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bench_train
import common
import numpy as np
import torch
from embedlab_cornstack import DualConsistency, SoftmaxNegatives
from embedlab_train import TrainingContext, TrainingSet

from embedlab.cache import EmbeddingCache
from embedlab.training import TrainingData


def first_stage(threads: int | None) -> dict:
    """Zero-shot MiniLM (ONNX, exact cosine); ``threads``: ONNX Runtime intra-op threads (None: its default)."""
    return {"encoder": {"name": "minilm", "backend": "onnx", "show_progress": False, "num_threads": threads}}


TOP_KS = (1, 2, 3, 5, 10)
MIN_SCORES = (None, 0.5, 0.6, 0.7, 0.8)
TEMPERATURES = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


def noisy(data: TrainingSet, share: float, seed: int) -> tuple[TrainingSet, np.ndarray]:
    """``data`` with a ``share`` of its examples given a random document as positive (judged sets
    follow the noisy labels, as a noisy dataset's would); returns the set and the wrong examples."""
    rng = np.random.default_rng(seed)
    wrong = np.zeros(len(data), dtype=bool)
    wrong[rng.permutation(len(data))[:round(share * len(data))]] = True
    positive = data.positive.copy()
    for e in np.flatnonzero(wrong).tolist():
        while positive[e] in data.judged[data.query[e]]:
            positive[e] = rng.integers(len(data.corpus))
    judged = [set() for _ in data.judged]
    for q, p in zip(data.query.tolist(), positive.tolist()):
        judged[q].add(p)
    return TrainingSet(data.queries, data.corpus, data.query, positive, judged, data.grade), wrong


def filter_table(name: str, data: TrainingSet, args: argparse.Namespace) -> list[dict]:
    rows = []
    for seed in args.seeds:
        noisy_data, wrong = noisy(data, args.noise, seed)
        context = TrainingContext(noisy_data, 384, torch.device("cpu"), seed, EmbeddingCache())
        for top_k in TOP_KS:
            for min_score in MIN_SCORES:
                keep = DualConsistency(first_stage=first_stage(args.threads), top_k=top_k,
                                       min_score=min_score).keep(context)
                rows.append({"dataset": name, "seed": seed, "top_k": top_k, "min_score": min_score,
                             "noise_recall": float((~keep[wrong]).mean()), "clean_loss": float((~keep[~wrong]).mean()),
                             "kept": int(keep.sum()), "pairs": len(keep)})
    print(f"\n{name}: {len(data)} training pairs, {args.noise:.0%} noise, seeds {args.seeds}; noise recall / clean "
          "pairs lost (mean over seeds)")
    print("| top_k | " + " | ".join("rank only" if s is None else f">= {s}" for s in MIN_SCORES) + " |")
    print("|---|" + "---|" * len(MIN_SCORES))
    for top_k in TOP_KS:
        cells = []
        for min_score in MIN_SCORES:
            chosen = [r for r in rows if r["top_k"] == top_k and r["min_score"] == min_score]
            recall = np.mean([r["noise_recall"] for r in chosen])
            loss = np.mean([r["clean_loss"] for r in chosen])
            mark = " **" if recall >= 0.8 and loss <= 0.1 else ""
            cells.append(f"{recall:.3f} / {loss:.3f}{mark}")
        print(f"| {top_k} | " + " | ".join(cells) + " |")
    return rows


def sampler_table(name: str, data: TrainingSet, args: argparse.Namespace) -> list[dict]:
    context = TrainingContext(data, 384, torch.device("cpu"), 0, EmbeddingCache())
    sampler = SoftmaxNegatives(first_stage=first_stage(args.threads), count=args.count, depth=100,
                               temperatures=list(TEMPERATURES))
    sampler.prepare(context)
    assert sampler._candidates is not None
    rows = []
    for epoch, temperature in enumerate(TEMPERATURES):
        ranks = []
        for seed in args.seeds:
            negatives = sampler.sample(context, epoch, np.random.default_rng([seed, epoch]))
            ranks += [sampler._candidates.rank_of(int(q), n) for q, row in zip(data.query, negatives.tolist())
                      for n in row]
        rows.append({"dataset": name, "temperature": temperature, "mean_rank": float(np.mean(ranks)),
                     "median_rank": float(np.median(ranks))})
    monotone = all(a["mean_rank"] < b["mean_rank"] for a, b in zip(rows, rows[1:]))
    print(f"\n{name}: mean (median) first-stage rank of {args.count} sampled negatives per pair, MiniLM top 100; "
          f"monotone in temperature: {monotone}")
    print("| temperature | " + " | ".join(f"{r['temperature']:g}" for r in rows) + " |")
    print("|---|" + "---|" * len(rows))
    print("| mean (median) rank | " + " | ".join(f"{r['mean_rank']:.1f} ({r['median_rank']:.0f})" for r in rows) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["cosqa"], choices=sorted(bench_train.SPLITS))
    parser.add_argument("--noise", type=float, default=0.2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--count", type=int, default=7, help="negatives sampled per pair")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads of the first stage")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    common.report_load("before")
    results = {"filter": [], "sampler": []}
    for name in args.datasets:
        dataset = common.load(name)
        train_name, _ = bench_train.SPLITS[name]
        data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split(train_name)))
        results["filter"] += filter_table(name, data, args)
        results["sampler"] += sampler_table(name, data, args)
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
