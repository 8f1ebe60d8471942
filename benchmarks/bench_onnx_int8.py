"""Quality of a reduced-precision backend (int8, bf16) against ONNX fp32 (all-MiniLM-L6-v2, SciFact test).

    python benchmarks/bench_onnx_int8.py            # both encodings go through the embedding cache
    python benchmarks/bench_onnx_int8.py --backend onnx-int8-qkv --threads 1
    python benchmarks/bench_onnx_int8.py --backend openvino-int8 --threads 1
    python benchmarks/bench_onnx_int8.py --backend onnx-int8-qkv --threads 1 --dataset python-stdlib

Encodes the SciFact corpus and test queries with ``backend="onnx"`` and ``--backend`` (default
``onnx-int8``)
(each cached under the key a pipeline uses, so reruns are instant), reports the cosine between the
two backends' vectors of every text (mean, 1st percentile, min), nDCG@10 of exact search with each,
and the paired per-query difference. Speed is measured by ``bench_onnx_vs_torch.py``.
"""

from __future__ import annotations

import argparse

import numpy as np
from common import load, report_load
from embedlab_transformers import MiniLM

from embedlab import Ranking
from embedlab.cache import EmbeddingCache
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.stats import paired_tests


def encode(backend: str, dataset, split, threads: int | None):
    encoder, cache = MiniLM(backend=backend, num_threads=threads, show_progress=True), EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", dataset.corpus.content_hash),
                                lambda: encoder.encode_documents(dataset.corpus.documents()))
    queries = cache.get_or_compute(cache.key(encoder, "queries", split.queries.content_hash),
                                   lambda: encoder.encode_queries(list(split.queries.texts)))
    return docs.embeddings, queries.embeddings, docs.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="onnx-int8")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (not part of the cache key)")
    parser.add_argument("--dataset", default="scifact", help="a dataset with a test split (scifact, python-stdlib)")
    args = parser.parse_args()
    report_load("before")
    dataset = load(args.dataset)
    split = dataset.split("test")
    runs, vectors = {}, {}
    for backend in ("onnx", args.backend):
        docs, queries, seconds = encode(backend, dataset, split, args.threads)
        index = ExactIndex()
        index.build(docs)
        ranking = Ranking.from_search(split.queries.ids, index.search(queries, 100), dataset.corpus.ids)
        runs[backend] = evaluate(ranking, split.qrels, ["nDCG@10"])
        vectors[backend] = (docs, queries)
        print(f"{backend}: documents encoded in {seconds:.0f} s (when first computed)")
    cosines = np.concatenate([(a * b).sum(1) for a, b in zip(vectors["onnx"], vectors[args.backend])])
    fp32, int8 = runs["onnx"], runs[args.backend]
    test = paired_tests(int8.per_query["nDCG@10"], fp32.per_query["nDCG@10"])
    print(f"{args.dataset} test ({len(split.queries)} queries, {len(dataset.corpus)} documents)")
    print("| backend | nDCG@10 |\n|---|---|")
    for name, run in runs.items():
        print(f"| {name} | {run.aggregates['nDCG@10']:.4f} |")
    print(f"{args.backend} - fp32: {test.mean_difference:+.4f} (paired t p = {test.p_ttest:.3f}; "
          f"improved {test.improved}, degraded {test.degraded}, tied {test.tied})")
    print(f"cosine(fp32, {args.backend}) over {cosines.size} texts: mean {cosines.mean():.4f}, "
          f"1st percentile {np.percentile(cosines, 1):.4f}, min {cosines.min():.4f}")


if __name__ == "__main__":
    main()
