"""Query Drift Compensation (embedlab-qdc) after continual fine-tuning: every corpus was indexed by
the old model (zero-shot MiniLM); the model is then fine-tuned on a new task (python-stdlib's training
queries, bench_train.py's recipe) and only the queries use the new model. Per evaluated corpus:

* old / old: the old model on both sides (before the update);
* new queries / old index: the new model's queries against the kept index (no compensation);
* QDC: the new model's queries minus the mean drift of the new task's training queries;
* re-index: the new model on both sides (the upper bound that re-encodes the corpus).

The paper's claim at our scale: QDC recovers at least half of the gap between "new queries / old
index" and re-indexing. ``--configs qdc-kd`` also fine-tunes with the paper's embedding distillation.

    python benchmarks/bench_qdc.py --train-queries 640 --set lr=5e-05 train_max_length=64 eval_steps=10 \
        --evaluate python-stdlib scifact --max-length scifact=128

The fine-tuning is bench_train.py's recipe (reused from the cache when bench_train.py ran it) and the
encodings are the pipelines' cache entries, shared with bench_train.py and ``embedlab run``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bench_train
import common
import numpy as np
from embedlab_qdc import QueryDriftCompensation

import embedlab
from embedlab import Ranking
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate
from embedlab.stats import paired_tests
from embedlab.training import TrainingData

CONFIGS = {"infonce": bench_train.CONFIGS["infonce"],
           "qdc-kd": {"loss": {"name": "qdc-kd", "previous": {"name": "minilm", "backend": "onnx"}}}}


def encoders(name: str, qdc: QueryDriftCompensation, task: str, lengths: dict, threads: int | None) -> tuple:
    """(old, new, split the new one was trained on) for corpus ``name``, at its test-time ``max_length``
    (``--max-length``; default the fine-tuning recipe's): the fine-tuned encoder itself where the length
    matches (its pipeline encodings in the cache are reused), else its weights as a ``transformers`` encoder."""
    fine_tuned = qdc.new
    length = lengths.get(name, fine_tuned.config.max_length)
    old = embedlab.create("encoder", "minilm", max_length=length, num_threads=threads)
    if length == fine_tuned.config.max_length:  # on the task, an untrained twin: its pipeline reuses the run
        return (old, type(fine_tuned)(fine_tuned.config), bench_train.SPLITS[task][0]) if name == task else \
            (old, fine_tuned, None)
    new = embedlab.create("encoder", "transformers", model_path=str(fine_tuned.model_dir), max_length=length,
                          num_threads=threads)
    return old, new, None


def ranking(queries: np.ndarray, docs: np.ndarray, split, doc_ids: np.ndarray) -> Ranking:
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    return Ranking(split.queries.ids, doc_ids[top], np.take_along_axis(scores, top, axis=1))


def evaluate_corpus(name: str, qdc: QueryDriftCompensation, task: str, lengths: dict, args: argparse.Namespace,
                    cache: EmbeddingCache) -> dict:
    dataset = common.load(name)
    test_name = bench_train.SPLITS[name][1]
    test, doc_ids = dataset.split(test_name), np.asarray(dataset.corpus.ids)
    old, new, trained_on = encoders(name, qdc, task, lengths, args.threads)
    old_docs, old_queries = common.pipeline_vectors(old, dataset, test_name, None, cache)
    new_docs, new_queries = common.pipeline_vectors(new, dataset, test_name, trained_on, cache)
    compensated = (new_queries - qdc.total_drift).astype(np.float32)
    systems = {"old / old": (old_queries, old_docs), "new queries / old index": (new_queries, old_docs),
               "QDC": (compensated, old_docs), "re-index": (new_queries, new_docs)}
    values = {label: evaluate(ranking(q, d, test, doc_ids), test.qrels, ["nDCG@10"]) for label, (q, d) in
              systems.items()}
    means = {label: v.aggregates["nDCG@10"] for label, v in values.items()}
    gap = means["re-index"] - means["new queries / old index"]
    recovered = (means["QDC"] - means["new queries / old index"]) / gap if gap else float("nan")
    tests = paired_tests(values["QDC"].query_values("nDCG@10"),
                         values["new queries / old index"].query_values("nDCG@10"))
    cosines = np.sum(new_queries * old_queries, axis=1) / (np.linalg.norm(new_queries, axis=1)
                                                           * np.linalg.norm(old_queries, axis=1))
    return {"dataset": name, **means, "recovered": recovered, "p_ttest": tests.p_ttest, "p_wilcoxon": tests.p_wilcoxon,
            "query_cosine_new_old": float(cosines.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="python-stdlib", choices=sorted(bench_train.SPLITS),
                        help="the new task the model is fine-tuned on")
    parser.add_argument("--evaluate", nargs="+", default=["scifact"], choices=sorted(bench_train.SPLITS),
                        help="corpora indexed by the old model")
    parser.add_argument("--configs", nargs="+", default=["infonce"], choices=sorted(CONFIGS))
    parser.add_argument("--train-queries", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="fine-tuning parameters (bench_train.py's), e.g. lr=5e-05")
    parser.add_argument("--max-length", nargs="*", default=[], metavar="DATASET=TOKENS",
                        help="test-time tokens of an evaluated corpus (both models), e.g. scifact=128")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    common.report_load("before")
    task = common.load(args.task)
    train = task.split(bench_train.SPLITS[args.task][0])
    lengths = common.overrides(args.max_length)
    cache, rows = EmbeddingCache(), []
    for config in args.configs:
        new = {"name": "finetune", **bench_train.finetune_params(config, args, CONFIGS)}
        qdc = QueryDriftCompensation(old={"name": "minilm", "max_length": new["max_length"],
                                          "num_threads": args.threads}, new=new)
        qdc.fit_queries(TrainingData(task.corpus, train))  # reuses bench_train.py's finished run
        print(f"{config}: fine-tuned on {args.train_queries or 'all'} {args.task} queries "
              f"({qdc.new.training_record}); drift norm {np.linalg.norm(qdc.drift):.4f}", flush=True)
        for name in args.evaluate:
            rows.append({"config": config, "drift_norm": float(np.linalg.norm(qdc.drift)),
                         "max_length": lengths.get(name, new["max_length"]),
                         **evaluate_corpus(name, qdc, args.task, lengths, args, cache)})
            print(f"  {rows[-1]}", flush=True)
    print("\n| fine-tuning | corpus (old index) | old / old | new queries / old index | QDC | re-index | "
          "gap recovered | p (QDC vs no compensation, t / Wilcoxon) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['dataset']} | {r['old / old']:.4f} | {r['new queries / old index']:.4f} | "
              f"{r['QDC']:.4f} | {r['re-index']:.4f} | {r['recovered']:.0%} | "
              f"{r['p_ttest']:.2g} / {r['p_wilcoxon']:.2g} |")
    if args.json:
        common.write_json(args.json, args, {"rows": rows})


if __name__ == "__main__":
    main()
