"""Fine-tuning MiniLM with embedlab-train: quality against zero-shot MiniLM, and training throughput
against sentence-transformers' trainer.

``quality``: for each dataset, zero-shot ``minilm`` and one ``finetune`` encoder per ``--config``
(trained on the train split, early-stopped on held-out *training* queries) are evaluated on the test
split: nDCG@10 over the whole split and, where training and test share relevant documents (SciFact),
over the *unseen* subset (test queries none of whose relevant documents is relevant to any training
query); paired t-test and Wilcoxon per query against zero-shot, Holm-corrected across the table.
cosqa has no train split: it trains on ``dev`` and tests on ``test``.

    python benchmarks/bench_train.py quality --datasets python-stdlib scifact cosqa \
        --configs infonce mined --json results/bench_train_quality.json
    (--held-out-only trains and prints the held-out *training* queries' nDCG@10 without touching
    the test split: choose a hyper-parameter with it, e.g. --configs rzen-a0 rzen-a1 rzen rzen-a9)
    (--train-queries N trains on a seeded sample of N training queries, the ``finetune`` parameter
    ``train_queries``; --set key=value overrides finetune parameters, e.g. --set epochs=2
    train_max_length=64; ``max_length``, the documents' and queries' tokens at test time, applies to
    the zero-shot row too)

The session-5 budget (docs/benchmarks.md, examples/training.toml) is ``--train-queries 640 --set
lr=5e-05 train_max_length=64 eval_steps=10`` (plus ``max_length=64`` on SciFact: 64 tokens per
abstract at test time, the zero-shot row's too, to fit the CPU): one epoch over the pairs of 576
queries (64 held out), the best of the held-out evaluations at steps 0, 10 and the end kept.

``speed``: pairs per second of our loop and of ``SentenceTransformerTrainer`` with
``MultipleNegativesRankingLoss``, on the same pairs, batch size, max length and threads, in one
process, alternating (ours, theirs, ours, theirs...). The first ``--warmup`` steps are not timed.
The ratio is only meaningful on a quiet machine: the load average is printed with every row.

    python benchmarks/bench_train.py speed --pairs 512 --batch-size 32 --max-length 128 --threads 1 2
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import common
import numpy as np
from embedlab_train import FineTunedEncoder, TrainingSet

import embedlab
from embedlab import Dataset, Split
from embedlab.cache import EmbeddingCache
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.pipeline import Pipeline
from embedlab.splits import unseen_qrels
from embedlab.stats import holm, paired_tests
from embedlab.training import TrainingData

#: The mining first stage: zero-shot MiniLM through ONNX (its corpus vectors are in the shared cache).
MINILM_ONNX = {"encoder": {"name": "minilm", "backend": "onnx"}}
#: Training recipes compared (``--configs``): encoder parameters on top of ``BASE``.
CONFIGS: dict[str, dict[str, Any]] = {
    "infonce": {"loss": {"name": "infonce", "temperature": 0.05}},
    "mined": {"loss": {"name": "infonce", "temperature": 0.05},
              "negatives": {"name": "mined", "first_stage": MINILM_ONNX, "count": 1, "start": 3, "depth": 30}},
    "mined-bm25": {"loss": {"name": "infonce", "temperature": 0.05},
                   "negatives": {"name": "mined", "first_stage": "bm25", "count": 1, "start": 3, "depth": 30}},
    "matryoshka": {"loss": {"name": "matryoshka", "dims": [384, 256, 128, 64, 32]}},
    "gist": {"loss": {"name": "gist", "guide": {"name": "minilm"}, "margin": 0.1}},
    # The same guide reading 64 tokens per document: SciFact's rows all read 64 tokens per abstract, and the
    # guide's vectors are then zero-shot MiniLM's cached ones (256 tokens would re-encode 5,183 abstracts).
    "gist-guide64": {"loss": {"name": "gist", "guide": {"name": "minilm", "max_length": 64}, "margin": 0.1}},
    "rzen": {"loss": {"name": "rzen", "alpha": 5.0, "false_negative_margin": 0.0}},
    # RzenEmbed's alpha sweep (alpha 0: hardness weighting off, the mask and learnable T kept; LLaVE uses 9),
    # chosen on held-out training queries (--held-out-only), then the chosen alpha evaluated on test.
    "rzen-a0": {"loss": {"name": "rzen", "alpha": 0.0, "false_negative_margin": 0.0}},
    "rzen-a1": {"loss": {"name": "rzen", "alpha": 1.0, "false_negative_margin": 0.0}},
    "rzen-a9": {"loss": {"name": "rzen", "alpha": 9.0, "false_negative_margin": 0.0}},
    "kalm": {"loss": {"name": "kalm", "gamma": 1.0, "mix_negatives": 8}},
    # KaLM's ablation: focal reweighting alone, hard-negative mixing alone (both: `kalm`; neither: `infonce`).
    "kalm-focal": {"loss": {"name": "kalm", "gamma": 1.0, "mix_negatives": 0}},
    "kalm-mixing": {"loss": {"name": "kalm", "gamma": 0.0, "mix_negatives": 8}},
    # embedlab-qwen3: the report's masked five-term InfoNCE, alone and under MRL.
    "qwen3": {"loss": {"name": "qwen3", "temperature": 0.05}},
    "qwen3-matryoshka": {"loss": {"name": "matryoshka", "dims": [384, 256, 128, 64, 32],
                                  "base": {"name": "qwen3", "temperature": 0.05}}},
    # LG-ANNA soft labels on top of the `mined` recipe (its supervised control), from two teachers of
    # different strength as SciFact rerankers of MiniLM's top 100 (docs/benchmarks.md): MiniLM token
    # MaxSim (0.7054 vs MiniLM's 0.6451, the stronger) and the yes/no cross-encoder saved by
    # `python benchmarks/bench_yesno.py --dataset scifact --save results/yesno-scifact ...` (0.4474 on
    # MiniLM's top 20, the weaker). Both read 128 tokens and score each query's own
    # candidates on demand (no prefetch).
    "lganna-maxsim": {"loss": {"name": "lganna", "temperature": 0.05, "teacher": {"name": "maxsim", "max_length": 128},
                               "prefetch_depth": 0},
                      "negatives": {"name": "mined", "first_stage": MINILM_ONNX, "count": 1, "start": 3, "depth": 30}},
    "lganna-yesno": {"loss": {"name": "lganna", "temperature": 0.05, "prefetch_depth": 0,
                              "teacher": {"name": "yesno", "model_path": "results/yesno-scifact", "backend": "onnx",
                                          "max_length": 128}},
                     "negatives": {"name": "mined", "first_stage": MINILM_ONNX, "count": 1, "start": 3, "depth": 30}},
}
BASE = {"epochs": 1, "train_batch_size": 32, "lr": 2e-5, "train_max_length": 128, "max_length": 256,
        "validation_fraction": 0.1, "validation_pool": 300, "patience": 2}
#: dataset -> (train split, test split)
SPLITS = {"python-stdlib": ("train", "test"), "scifact": ("train", "test"), "cosqa": ("dev", "test")}


def finetune_params(config: str, args: argparse.Namespace, configs: dict[str, dict] = CONFIGS) -> dict[str, Any]:
    """The ``finetune`` parameters of recipe ``config`` under the command line's budget."""
    budget = {"train_queries": args.train_queries} if args.train_queries else {}
    return {**BASE, **configs[config], **budget, "seed": args.seed, "num_threads": args.threads,
            **common.overrides(args.set)}


def zero_shot(args: argparse.Namespace) -> Any:
    """Zero-shot MiniLM with the fine-tuned encoders' test-time ``max_length``."""
    max_length = common.overrides(args.set).get("max_length", BASE["max_length"])
    return embedlab.create("encoder", "minilm", max_length=max_length, num_threads=args.threads)


def evaluate_encoder(encoder: Any, dataset: Dataset, train: Split | None, test: str, cache: EmbeddingCache) -> tuple:
    pipeline = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"), cache=cache, name=encoder.name)
    started = time.perf_counter()
    pipeline.build(dataset.corpus, train=train)
    seconds = time.perf_counter() - started
    split = dataset.split(test)
    ranking = pipeline.search(split.queries, k=100)
    return ranking, evaluate(ranking, split.qrels, ["nDCG@10"]), seconds


def held_out(args: argparse.Namespace, configs: dict[str, dict[str, Any]] = CONFIGS) -> dict:
    """``--held-out-only``: train each recipe (or reuse its finished run) and report its held-out
    *training* queries' nDCG@10 per evaluation, without encoding the test split: the cheap way to
    choose a hyper-parameter (e.g. RzenEmbed's alpha) before evaluating only the chosen one on test."""
    rows = []
    print("| dataset | method | held-out nDCG@10 per evaluation | best | steps |\n|---|---|---|---|---|")
    for name in args.datasets:
        dataset = common.load(name)
        train = dataset.split(SPLITS[name][0])
        for config in args.configs:
            encoder = FineTunedEncoder(**finetune_params(config, args, configs))
            encoder.fit_queries(TrainingData(dataset.corpus, train))
            record = encoder.training_record
            held = record.get("validation_ndcg10") or []
            rows.append({"dataset": name, "method": f"finetune {config}", "validation": held,
                         "best": max(held) if held else float("nan"), "steps": record.get("steps"),
                         "params": finetune_params(config, args, configs)})
            print(f"| {name} | {config} | {' / '.join(f'{v:.4f}' for v in held)} | {rows[-1]['best']:.4f} | "
                  f"{record.get('steps')} |", flush=True)
    return {"rows": rows}


def quality(args: argparse.Namespace, configs: dict[str, dict[str, Any]] = CONFIGS) -> dict:
    """Zero-shot and every recipe of ``args.configs`` (names in ``configs``) on each dataset."""
    if args.held_out_only:
        return held_out(args, configs)
    cache = EmbeddingCache()
    rows, comparisons, controls = [], [], []
    for name in args.datasets:
        dataset = common.load(name)
        train, test = SPLITS[name]
        unseen = unseen_qrels(dataset.split(test).qrels, dataset.split(train).qrels)
        split = dataset.split(test)
        train_split = dataset.split(train)
        print(f"\n{name}: train {train} ({args.train_queries or len(train_split.queries)} queries), test {test} "
              f"({len(split.queries)} queries, {len(unseen)} unseen)", flush=True)
        ranking, base_eval, _ = evaluate_encoder(zero_shot(args), dataset, None, test, cache)
        base = base_eval.query_values("nDCG@10")
        base_unseen = evaluate(ranking, unseen, ["nDCG@10"]).aggregates["nDCG@10"] if unseen else float("nan")
        rows.append({"dataset": name, "method": "zero-shot minilm", "ndcg10": base_eval.aggregates["nDCG@10"],
                     "unseen": base_unseen, "train_s": 0.0})
        print(f"  zero-shot: nDCG@10 {rows[-1]['ndcg10']:.4f} unseen {base_unseen:.4f}", flush=True)
        per_query: dict[str, tuple[dict, dict]] = {}
        for config in args.configs:
            params = finetune_params(config, args, configs)
            encoder = FineTunedEncoder(**params)
            ranking, result, seconds = evaluate_encoder(encoder, dataset, train_split, test, cache)
            ours = result.query_values("nDCG@10")
            tests = paired_tests(ours, base)
            record = encoder.training_record
            row = {"dataset": name, "method": f"finetune {config}", "ndcg10": result.aggregates["nDCG@10"],
                   "unseen": evaluate(ranking, unseen, ["nDCG@10"]).aggregates["nDCG@10"] if unseen else float("nan"),
                   "train_s": seconds, "steps": record.get("steps"), "validation": record.get("validation_ndcg10"),
                   "p_ttest": tests.p_ttest, "p_wilcoxon": tests.p_wilcoxon, "params": params}
            rows.append(row)
            comparisons.append(row)
            per_query[config] = (ours, evaluate(ranking, unseen, ["nDCG@10"]).query_values("nDCG@10") if unseen else {})
            print(f"  {config}: nDCG@10 {row['ndcg10']:.4f} (zero-shot {base_eval.aggregates['nDCG@10']:.4f}) "
                  f"unseen {row['unseen']:.4f} p_t={tests.p_ttest:.2g} steps={row['steps']} "
                  f"train+encode {seconds:.0f}s", flush=True)
        controls += against_controls(name, per_query, args.versus)
    for key in ("p_ttest", "p_wilcoxon"):
        for row, corrected in zip(comparisons, holm([r[key] for r in comparisons])):
            row[f"{key}_holm"] = corrected
    print("\n| dataset | method | nDCG@10 | unseen nDCG@10 | p (t-test, Holm) | p (Wilcoxon, Holm) | "
          "held-out nDCG@10 (start -> kept) | steps |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        p = f"{row['p_ttest_holm']:.2g} | {row['p_wilcoxon_holm']:.2g}" if "p_ttest_holm" in row else "- | -"
        held = row.get("validation") or []
        held_text = f"{held[0]:.3f} -> {max(held):.3f}" if held else "-"
        print(f"| {row['dataset']} | {row['method']} | {row['ndcg10']:.4f} | {row['unseen']:.4f} | {p} | "
              f"{held_text} | {row.get('steps', '-')} |")
    if controls:
        print("\n| dataset | method | control | difference | p (t / Wilcoxon) | up / down | unseen difference | "
              "unseen p (t / Wilcoxon) |\n|---|---|---|---|---|---|---|---|")
        for c in controls:
            print(f"| {c['dataset']} | {c['method']} | {c['control']} | {c['difference']:+.4f} | {c['p_ttest']:.2g} / "
                  f"{c['p_wilcoxon']:.2g} | {c['improved']} / {c['degraded']} | {c['unseen_difference']:+.4f} | "
                  f"{c['unseen_p_ttest']:.2g} / {c['unseen_p_wilcoxon']:.2g} |")
    return {"rows": rows, "versus_controls": controls}


def against_controls(dataset: str, per_query: dict[str, tuple[dict, dict]], names: list[str]) -> list[dict]:
    """Paired tests of every recipe against each supervised control in ``names`` (``--versus``), on
    the whole test split and on the unseen subset: what a method adds over the same fine-tuning."""
    out = []
    for control in (n for n in names if n in per_query):
        for config, (ours, ours_unseen) in per_query.items():
            if config == control:
                continue
            whole = paired_tests(ours, per_query[control][0])
            row = {"dataset": dataset, "method": config, "control": control, "difference": whole.mean_difference,
                   "p_ttest": whole.p_ttest, "p_wilcoxon": whole.p_wilcoxon, "improved": whole.improved,
                   "degraded": whole.degraded, "unseen_difference": float("nan"), "unseen_p_ttest": float("nan"),
                   "unseen_p_wilcoxon": float("nan")}
            if ours_unseen:
                part = paired_tests(ours_unseen, per_query[control][1])
                row.update(unseen_difference=part.mean_difference, unseen_p_ttest=part.p_ttest,
                           unseen_p_wilcoxon=part.p_wilcoxon)
            out.append(row)
    return out


def speed_pairs(n: int) -> tuple[list[str], list[str]]:
    dataset = common.load("python-stdlib")
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    rows = np.random.default_rng(0).permutation(len(data))[:n]
    return ([data.queries.texts[q] for q in data.query[rows]], [data.documents[p] for p in data.positive[rows]])


def time_ours(queries: list[str], docs: list[str], args: argparse.Namespace, threads: int) -> float:
    """Pairs per second of embedlab-train over the steps after ``--warmup``."""
    data = TrainingSet.from_pairs(queries, docs, [(i, i) for i in range(len(queries))])
    stamps: list[float] = []
    encoder = FineTunedEncoder(train_batch_size=args.batch_size, max_length=args.max_length, epochs=1,
                               validation_fraction=0.0, checkpoint_dir=None, num_threads=threads,
                               show_progress=False, lr=2e-5)
    encoder.train(data, callbacks=[lambda info: stamps.append(time.perf_counter())])
    timed = len(stamps) - 1 - args.warmup
    return timed * args.batch_size / (stamps[-1] - stamps[args.warmup])


def time_theirs(queries: list[str], docs: list[str], args: argparse.Namespace, threads: int) -> float:
    """Pairs per second of SentenceTransformerTrainer + MultipleNegativesRankingLoss, same setting."""
    import torch
    from datasets import Dataset as HFDataset
    from embedlab_transformers.model_files import default_model_dir
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from transformers import TrainerCallback

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_: Any, **__: Any) -> None:
            stamps.append(time.perf_counter())

    torch.set_num_threads(threads)
    model = SentenceTransformer(str(default_model_dir()), device="cpu")
    model.max_seq_length = args.max_length
    with tempfile.TemporaryDirectory() as out:
        training = SentenceTransformerTrainingArguments(
            output_dir=out, num_train_epochs=1, per_device_train_batch_size=args.batch_size, learning_rate=2e-5,
            warmup_steps=0.1, save_strategy="no", logging_strategy="no", report_to=[], use_cpu=True,
            dataloader_drop_last=True, seed=0, disable_tqdm=True)
        trainer = SentenceTransformerTrainer(model=model, args=training,
                                             train_dataset=HFDataset.from_dict({"anchor": queries, "positive": docs}),
                                             loss=MultipleNegativesRankingLoss(model), callbacks=[Clock()])
        trainer.train()
    timed = len(stamps) - 1 - args.warmup
    return timed * args.batch_size / (stamps[-1] - stamps[args.warmup])


def speed(args: argparse.Namespace) -> dict:
    import torch

    queries, docs = speed_pairs(args.pairs)
    common.report_load("before")
    rows = []
    for threads in args.threads:
        load = os.getloadavg()[0]
        ours, theirs = [], []
        for _ in range(args.repeats):
            ours.append(time_ours(queries, docs, args, threads))
            theirs.append(time_theirs(queries, docs, args, threads))
        torch.set_num_threads(os.cpu_count() or 1)
        row = {"threads": threads, "ours_pairs_s": max(ours), "st_pairs_s": max(theirs),
               "ratio": max(ours) / max(theirs), "load_before": load, "load_after": os.getloadavg()[0],
               "pairs": len(queries), "batch_size": args.batch_size, "max_length": args.max_length}
        rows.append(row)
        print(f"threads {threads}: ours {row['ours_pairs_s']:.1f} pairs/s, sentence-transformers "
              f"{row['st_pairs_s']:.1f} pairs/s, ratio {row['ratio']:.2f}x (load {load:.1f} -> "
              f"{row['load_after']:.1f})", flush=True)
    return {"rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    q = sub.add_parser("quality")
    q.add_argument("--datasets", nargs="+", default=["python-stdlib"], choices=sorted(SPLITS))
    q.add_argument("--configs", nargs="+", default=["infonce"], choices=sorted(CONFIGS))
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--threads", type=int, default=None)
    q.add_argument("--train-queries", type=int, default=None,
                   help="train on a seeded sample of this many training queries (default: all)")
    q.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override finetune parameters for every config (JSON values), e.g. epochs=2")
    q.add_argument("--versus", nargs="*", default=[], metavar="CONFIG",
                   help="also test every recipe against these recipes (supervised controls, e.g. infonce mined)")
    q.add_argument("--held-out-only", action="store_true",
                   help="train and report held-out training queries' nDCG@10 only (no test encoding)")
    q.add_argument("--json", type=Path)
    s = sub.add_parser("speed")
    s.add_argument("--pairs", type=int, default=512)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--max-length", type=int, default=128)
    s.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    s.add_argument("--warmup", type=int, default=2)
    s.add_argument("--repeats", type=int, default=1)
    s.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = quality(args) if args.command == "quality" else speed(args)
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
