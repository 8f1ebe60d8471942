"""LLM2Vec-Gen (embedlab-llm2vec-gen) against its teacher, MiniLM, on python-stdlib.

The encoder trains on the *train* split (stage 1: the small generator, query -> start of a relevant
function; stage 2: its greedy responses and the teacher's vectors of them; stage 3: the special
tokens with reconstruction + alignment) and is evaluated on the *test* split: test queries embedded
by the special tokens, documents by the teacher (``documents = "teacher"``; ``--student-documents``
adds the paper's setting, documents through the special tokens too, which costs a MiniLM pass with
gradients off over every document). Rows: the teacher alone (MiniLM exact search), LLM2Vec-Gen
(reconstruction + alignment), and the alignment-only control (``reconstruction_weight = 0``) that
isolates the reconstruction term. Runs stay in the embedlab cache: a rerun reuses finished stages.

    python benchmarks/bench_llm2vec_gen.py --dataset python-stdlib:2000 --epochs 2 --generator-epochs 10 \\
        --threads 2 --json results/bench_llm2vec_gen_stdlib.json
"""

from __future__ import annotations

import argparse
import time

import common
import numpy as np
from bench_dsi import load

import embedlab
from embedlab.metrics import evaluate
from embedlab.ranking import Ranking
from embedlab.training import TrainingData

METRICS = ["Success@1", "Success@10", "nDCG@10"]


def scores(queries: np.ndarray, docs: np.ndarray, split: common.EncodedSplit) -> dict[str, float]:
    encoded = common.EncodedSplit(docs, queries, split.doc_ids, split.query_ids, split.qrels, split.query_texts)
    ranking: Ranking = encoded.exact_ranking(10)
    values = evaluate(ranking, split.qrels, METRICS).aggregates
    return {m: float(values[m]) for m in METRICS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="python-stdlib:2000")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--generator-epochs", type=int, default=10)
    parser.add_argument("--special-tokens", type=int, default=10)
    parser.add_argument("--response-tokens", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=32)
    parser.add_argument("--rows", nargs="*", default=["full", "alignment-only"], choices=["full", "alignment-only"])
    parser.add_argument("--student-documents", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    common.report_load()
    dataset = load(args.dataset)
    train = dataset.split("train")
    test = common.encode_split(dataset, "test")
    print(f"{args.dataset}: {len(dataset.corpus)} documents, {len(train.queries)} train / {len(test.query_ids)} test "
          "queries", flush=True)
    rows: dict[str, dict] = {"MiniLM exact (the teacher)": scores(test.queries, test.docs, test)}
    print(f"  {'MiniLM exact (the teacher)':<44} {rows['MiniLM exact (the teacher)']}", flush=True)
    base = {"teacher": {"name": "minilm", **common.ENCODER_PARAMS["minilm"]}, "documents": "teacher",
            "special_tokens": args.special_tokens, "response_tokens": args.response_tokens,
            "max_length": args.max_length, "epochs": args.epochs, "generator_epochs": args.generator_epochs,
            "num_threads": args.threads, "show_progress": True}
    variants = {"full": {}, "alignment-only": {"reconstruction_weight": 0.0}}
    record = {}
    for row in args.rows:
        encoder = embedlab.create("encoder", "llm2vec-gen", **base, **variants[row])
        start = time.perf_counter()
        encoder.fit_queries(TrainingData(dataset.corpus, train))
        fit_s = time.perf_counter() - start
        queries = encoder.encode_queries(test.query_texts)
        label = f"LLM2Vec-Gen {row}, documents by the teacher"
        rows[label] = {**scores(queries, test.docs, test), "fit_s": fit_s}
        print(f"  {label:<44} {rows[label]}", flush=True)
        if args.student_documents:
            docs = encoder._embed(dataset.corpus.documents())
            label = f"LLM2Vec-Gen {row}, documents by the special tokens"
            rows[label] = scores(queries, docs, test)
            print(f"  {label:<44} {rows[label]}", flush=True)
        record[row] = encoder.training_record
        if args.json:
            common.write_json(args.json, args, {"rows": rows, "training": record})
    print("summary (test queries):")
    for label, row in rows.items():
        print(f"| {label} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")


if __name__ == "__main__":
    main()
