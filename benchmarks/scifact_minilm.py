"""all-MiniLM-L6-v2 + exact inner-product search on SciFact (BEIR test split, 300 queries).

    python benchmarks/scifact_minilm.py [--backend onnx|onnx-int8|torch] [--threads 2]

Mean pooling, max_length 256, normalised; documents are ``title + " " + text``
(``Corpus.documents()``). Reproduces the published MTEB nDCG@10 of 0.645 within +-0.003 (exit
status 1 otherwise), and checks embedlab's nDCG@10 against pytrec_eval on the same run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytrec_eval
from embedlab_transformers import MiniLM

from embedlab import Ranking
from embedlab.datasets.beir import load_beir
from embedlab.index.exact import ExactIndex
from embedlab.metrics import evaluate

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "beir"
PUBLISHED_NDCG10 = 0.645
TOLERANCE = 0.003


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("onnx", "onnx-int8", "torch"), default="onnx")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    dataset = load_beir(SCIFACT)
    split = dataset.split("test")
    encoder = MiniLM(backend=args.backend, num_threads=args.threads)
    encoder.loaded  # noqa: B018 - load (and for onnx export) before timing
    start = time.perf_counter()
    documents = encoder.encode_documents(dataset.corpus.documents())
    doc_seconds = time.perf_counter() - start
    start = time.perf_counter()
    queries = encoder.encode_queries(list(split.queries.texts))
    query_seconds = time.perf_counter() - start
    index = ExactIndex(metric="ip")
    index.build(documents)
    ranking = Ranking.from_search(split.queries.ids, index.search(queries, k=100), dataset.corpus.ids)
    ours = evaluate(ranking, split.qrels, ["nDCG@10", "R@100"]).aggregates
    trec = pytrec_eval.RelevanceEvaluator(split.qrels, {"ndcg_cut.10"}).evaluate(ranking.to_dict())
    reference = float(np.mean([v["ndcg_cut_10"] for v in trec.values()]))
    ok = abs(ours["nDCG@10"] - PUBLISHED_NDCG10) <= TOLERANCE
    print(f"SciFact test: {len(split.queries)} queries, {len(dataset.corpus)} documents, backend "
          f"{args.backend}, {args.threads} thread(s)")
    print("| measure | embedlab | pytrec_eval | published (MTEB) |")
    print("|---|---|---|---|")
    print(f"| nDCG@10 | {ours['nDCG@10']:.4f} | {reference:.4f} | {PUBLISHED_NDCG10:.3f} |")
    print(f"| R@100 | {ours['R@100']:.4f} | | |")
    print(f"encoding: documents {doc_seconds:.1f} s ({len(dataset.corpus) / doc_seconds:.1f} docs/s), "
          f"queries {query_seconds:.1f} s")
    print(f"nDCG@10 within +-{TOLERANCE} of {PUBLISHED_NDCG10}: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
