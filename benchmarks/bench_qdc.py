"""Query Drift Compensation (embedlab-qdc) after continual fine-tuning: every corpus was indexed by
the old model (zero-shot MiniLM); the model is then fine-tuned on a new task (python-stdlib's training
queries, bench_train.py's recipe) and only the queries use the new model. Per evaluated corpus:

* old / old: the old model on both sides (before the update);
* new queries / old index: the new model's queries against the kept index (no compensation);
* QDC: the new model's queries minus the mean drift of the new task's training queries;
* re-index: the new model on both sides (the upper bound that re-encodes the corpus).

The paper's claim at our scale: QDC recovers at least half of the gap between "new queries / old
index" and re-indexing. ``--configs qdc-kd`` also fine-tunes with the paper's embedding distillation.

    python benchmarks/bench_qdc.py --train-queries 640 --set lr=5e-05 train_max_length=64 \
        --evaluate scifact cosqa python-stdlib
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bench_train
import common
import numpy as np
from embedlab_qdc import QueryDriftCompensation
from embedlab_train import FineTunedEncoder

from embedlab import Ranking
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate
from embedlab.stats import paired_tests
from embedlab.training import TrainingData

CONFIGS = {"infonce": bench_train.CONFIGS["infonce"],
           "qdc-kd": {"loss": {"name": "qdc-kd", "previous": {"name": "minilm", "backend": "onnx"}}}}
OLD = {"name": "minilm", "backend": "onnx"}


def encode(encoder, role: str, texts: list[str], content: str, cache: EmbeddingCache) -> np.ndarray:
    method = encoder.encode_queries if role == "queries" else encoder.encode_documents
    return np.asarray(cache.get_or_compute(cache.key(encoder, role, content), lambda: method(texts)).embeddings)


def ranking(queries: np.ndarray, docs: np.ndarray, split, doc_ids: np.ndarray) -> Ranking:
    scores = queries @ docs.T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :100]
    return Ranking(split.queries.ids, doc_ids[top], np.take_along_axis(scores, top, axis=1))


def evaluate_corpus(name: str, qdc: QueryDriftCompensation, cache: EmbeddingCache) -> dict:
    dataset = common.load(name)
    test = dataset.split(bench_train.SPLITS[name][1])
    texts, doc_texts = list(test.queries.texts), dataset.corpus.documents()
    content, doc_ids = dataset.corpus.content_hash, np.asarray(dataset.corpus.ids)
    old_docs = encode(qdc.old, "documents", doc_texts, content, cache)
    new_docs = encode(qdc.new, "documents", doc_texts, content, cache)
    old_queries = encode(qdc.old, "queries", texts, test.queries.content_hash, cache)
    new_queries = encode(qdc.new, "queries", texts, test.queries.content_hash, cache)
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
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    common.report_load("before")
    task = common.load(args.task)
    train = bench_train.training_split(task, bench_train.SPLITS[args.task][0], args.train_queries, args.seed)
    cache, rows = EmbeddingCache(), []
    for config in args.configs:
        params = {**bench_train.BASE, **CONFIGS[config], "seed": args.seed, "num_threads": args.threads,
                  **common.overrides(args.set)}
        fine_tuned = FineTunedEncoder(**params).fit_queries(TrainingData(task.corpus, train))
        print(f"{config}: fine-tuned on {len(train.queries)} {args.task} queries ({fine_tuned.training_record})",
              flush=True)
        new = {"name": "transformers", "model_path": str(fine_tuned.model_dir), "backend": "onnx", "max_length": 256,
               "num_threads": args.threads}
        qdc = QueryDriftCompensation(old={**OLD, "num_threads": args.threads}, new=new, train_new=False)
        qdc.fit_queries(TrainingData(task.corpus, train))
        print(f"  drift norm {np.linalg.norm(qdc.drift):.4f}", flush=True)
        for name in args.evaluate:
            rows.append({"config": config, "drift_norm": float(np.linalg.norm(qdc.drift)),
                         **evaluate_corpus(name, qdc, cache)})
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
