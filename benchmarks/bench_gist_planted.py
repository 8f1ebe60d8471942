"""GISTEmbed against plain InfoNCE on training data with planted false negatives (issue #12's check
for embedlab-gist: "GIST >= plain InfoNCE on data with planted false negatives").

Training data: the seeded sample of ``--train-queries`` python-stdlib training queries that every row of
bench_train.py uses. For a seeded ``--rate`` of their positives, a near-duplicate (the positive with a
seeded ``--drop`` of its words removed, layout kept) joins the training corpus *unjudged*: a false negative. The
training corpus is the sampled queries' positives plus those duplicates (so the miner and GIST's guide
encode ~1,000 documents, not the whole corpus). Both recipes mine one hard negative per example from
zero-shot MiniLM's ranks 0-30 of that corpus (the best unjudged candidate, so a planted duplicate is
usually its query's hard negative: the false negatives that mined negatives carry) and train under
bench_train.py's budget (``--set``); only the loss differs: ``infonce`` or ``gist`` (guide zero-shot
MiniLM, absolute margin 0.1). Both are then evaluated on python-stdlib's real test split (its own
corpus, no duplicates) against zero-shot MiniLM, with paired tests.

Also printed: the share of examples whose mined negative is a planted duplicate, and the share of those
the guide masks (guide similarity to the query above the positive's minus the margin).

    python benchmarks/bench_gist_planted.py --train-queries 640 --set lr=5e-05 train_max_length=64 \
        eval_steps=10 --threads 1 --json results/bench_gist_planted.json
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import attrs
import bench_train
import common
import numpy as np
import torch
from embedlab_train import FineTunedEncoder, TrainingSet
from embedlab_train.context import TrainingContext

import embedlab
from embedlab import Corpus, Dataset, Split
from embedlab.cache import EmbeddingCache
from embedlab.stats import holm, paired_tests
from embedlab.training import TrainingData

MINED_FROM_TOP = {"name": "mined", "first_stage": bench_train.MINILM_ONNX, "count": 1, "start": 0, "depth": 30}
LOSSES = {"infonce": bench_train.CONFIGS["infonce"]["loss"], "gist": bench_train.CONFIGS["gist"]["loss"]}


def near_duplicate(text: str, drop: float, rng: np.random.Generator) -> str:
    """``text`` without a seeded ``drop`` share of its words (whitespace kept, so code keeps its layout)."""
    parts = re.split(r"(\s+)", text)
    words = [i for i, part in enumerate(parts) if part and not part.isspace()]
    dropped = {i for i in words if rng.random() < drop} if len(words) > 1 else set()
    return "".join(part for i, part in enumerate(parts) if i not in dropped)


def planted_training_data(dataset: Dataset, args: argparse.Namespace) -> tuple[TrainingData, set[int]]:
    """The sampled training queries over their positives plus the planted duplicates, and the
    duplicates' corpus positions."""
    train = dataset.split("train")
    full = TrainingSet.from_training_data(TrainingData(dataset.corpus, train))
    sample = full.sample_queries(args.train_queries, args.seed)
    query_ids = sorted({full.queries.ids[q] for q in sample.query.tolist()})
    positives = sorted(set(sample.positive.tolist()))
    rng = np.random.default_rng([args.seed, 7])
    planted = [p for p in positives if rng.random() < args.rate]
    corpus = dataset.corpus
    titles = corpus.titles or ("",) * len(corpus)
    ids = [corpus.ids[p] for p in positives] + [f"{corpus.ids[p]}#near-duplicate" for p in planted]
    texts = [corpus.texts[p] for p in positives] + [near_duplicate(corpus.texts[p], args.drop, rng) for p in planted]
    small = Corpus(ids, texts, [titles[p] for p in positives] + [titles[p] for p in planted])
    queries = train.queries.select(query_ids)
    split = Split("train", queries, {q: train.qrels[q] for q in query_ids})
    return TrainingData(small, split), set(range(len(positives), len(ids)))


def params(loss: str, args: argparse.Namespace) -> dict:
    return {**bench_train.BASE, "loss": LOSSES[loss], "negatives": MINED_FROM_TOP, "train_queries": args.train_queries,
            "seed": args.seed, "num_threads": args.threads, **common.overrides(args.set)}


def diagnostics(data: TrainingData, planted: set[int], args: argparse.Namespace, cache: EmbeddingCache) -> dict:
    """Share of examples whose mined negative is a planted duplicate; share of those the guide masks."""
    examples = TrainingSet.from_training_data(data)
    context = TrainingContext(examples, 384, torch.device("cpu"), args.seed, cache)
    sampler = embedlab.create("negatives", "mined", **{k: v for k, v in MINED_FROM_TOP.items() if k != "name"})
    sampler.prepare(context)
    negatives = sampler.sample(context, 0, np.random.default_rng(args.seed))[:, 0]
    hit = np.asarray([n in planted for n in negatives.tolist()])
    guide = embedlab.create("encoder", "minilm")
    queries, docs = context.encode(guide, "queries"), context.encode(guide, "documents")
    q = examples.query[hit]
    positive = np.sum(queries[q] * docs[examples.positive[hit]], axis=1)
    duplicate = np.sum(queries[q] * docs[negatives[hit]], axis=1)
    margin = LOSSES["gist"]["margin"]
    return {"examples": len(examples), "documents": len(data.corpus), "planted": len(planted),
            "negative_is_planted": float(hit.mean()),
            "guide_masks_planted": float(np.mean(duplicate > positive - margin))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--losses", nargs="+", default=["infonce", "gist"], choices=sorted(LOSSES))
    parser.add_argument("--train-queries", type=int, default=640)
    parser.add_argument("--rate", type=float, default=0.5, help="share of the positives given a planted duplicate")
    parser.add_argument("--drop", type=float, default=0.15, help="share of a duplicate's words removed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="finetune overrides (JSON values)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    common.report_load()
    cache = EmbeddingCache()
    dataset = common.load("python-stdlib")
    data, planted = planted_training_data(dataset, args)
    found = diagnostics(data, planted, args, cache)
    print(f"training corpus {found['documents']} documents ({found['planted']} planted duplicates), "
          f"{found['examples']} examples; mined negative is a planted duplicate for "
          f"{found['negative_is_planted']:.1%}; the guide (margin {LOSSES['gist']['margin']}) masks "
          f"{found['guide_masks_planted']:.1%} of those", flush=True)
    ranking, base_eval, _ = bench_train.evaluate_encoder(bench_train.zero_shot(args), dataset, None, "test", cache)
    base = base_eval.query_values("nDCG@10")
    rows, values = [{"method": "zero-shot minilm", "ndcg10": base_eval.aggregates["nDCG@10"]}], {}
    for loss in args.losses:
        encoder = FineTunedEncoder(**params(loss, args))
        encoder.fit_queries(data)
        _, result, seconds = bench_train.evaluate_encoder(encoder, dataset, None, "test", cache)
        values[loss] = result.query_values("nDCG@10")
        tests = paired_tests(values[loss], base)
        record = encoder.training_record
        rows.append({"method": f"{loss} + planted false negatives", "ndcg10": result.aggregates["nDCG@10"],
                     "p_ttest": tests.p_ttest, "p_wilcoxon": tests.p_wilcoxon, "steps": record.get("steps"),
                     "validation": record.get("validation_ndcg10"), "seconds": seconds, "params": params(loss, args)})
        print(f"  {loss}: nDCG@10 {rows[-1]['ndcg10']:.4f} p_t={tests.p_ttest:.2g} steps={record.get('steps')} "
              f"held-out {record.get('validation_ndcg10')}", flush=True)
    for key in ("p_ttest", "p_wilcoxon"):
        for row, corrected in zip(rows[1:], holm([r[key] for r in rows[1:]])):
            row[f"{key}_holm"] = corrected
    print("\n| python-stdlib test (360 queries) | nDCG@10 | p vs zero-shot (t, Holm) | held-out nDCG@10 | steps |")
    print("|---|---|---|---|---|")
    for row in rows:
        held = row.get("validation") or []
        print(f"| {row['method']} | {row['ndcg10']:.4f} | {row.get('p_ttest_holm', float('nan')):.2g} | "
              f"{' / '.join(f'{v:.3f}' for v in held) or '-'} | {row.get('steps', '-')} |")
    versus = None
    if {"gist", "infonce"} <= set(values):
        versus = paired_tests(values["gist"], values["infonce"])
        print(f"gist vs infonce: {versus.mean_system:.4f} vs {versus.mean_baseline:.4f}, p (t) = {versus.p_ttest:.2g}, "
              f"p (Wilcoxon) = {versus.p_wilcoxon:.2g}, {versus.improved} queries up / {versus.degraded} down")
    if args.json:
        common.write_json(args.json, args, {"diagnostics": found, "rows": rows,
                                            "gist_vs_infonce": None if versus is None else attrs.asdict(versus)})


if __name__ == "__main__":
    main()
