"""Local executor against the ray executor on this machine: the same pipeline, the same rankings.

    python benchmarks/bench_ray_overhead.py [--docs 100000] [--encoder hashing] [--actors 2] [--chunk-size 16384]

Corpus: the first ``--docs`` pypi-summaries rows; queries: the last 1,000 rows. Each side builds
the pipeline (encoder + exact index, chunks of ``--chunk-size`` documents) into its own empty cache
and searches the queries; the ray side starts a new local Ray in this process (``address="local"``:
never a cluster another process started; its start-up is reported separately) and runs
``--actors`` encoder actors and as many index shards. Prints the seconds per stage, the ratio
ray / local and whether the rankings are identical.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
from bench_scaling import corpus_and_queries
from common import report_load

from embedlab.cache import EmbeddingCache
from embedlab.pipeline import Pipeline
from embedlab.shards import DEFAULT_CHUNK_SIZE


def run(executor, corpus, queries, encoder: dict, root: str, chunk_size: int):
    pipeline = Pipeline.from_names(encoder=encoder, index="exact", cache=EmbeddingCache(root), executor=executor,
                                   progress=False, chunk_size=chunk_size)
    start = time.perf_counter()
    pipeline.build(corpus)
    build = time.perf_counter() - start
    start = time.perf_counter()
    ranking = pipeline.search(queries, 10)
    return pipeline, ranking, build, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--encoder", default="hashing", help="hashing (dim 384) or minilm-int8")
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE,
                        help="documents per chunk (the unit an actor encodes)")
    args = parser.parse_args()
    report_load("before")
    encoder = {"name": "hashing", "dim": 384} if args.encoder == "hashing" else \
        {"name": "minilm", "backend": "onnx-int8", "num_threads": 1, "show_progress": False}
    corpus, queries = corpus_and_queries(args.docs)
    import ray
    from embedlab_ray import RayExecutor

    start = time.perf_counter()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    startup = time.perf_counter() - start
    rows = {}
    with tempfile.TemporaryDirectory() as local_root, tempfile.TemporaryDirectory() as ray_root:
        rows["local"] = run(None, corpus, queries, encoder, local_root, args.chunk_size)
        executor = RayExecutor(actors=args.actors, cpus_per_actor=1)
        rows["ray"] = run(executor, corpus, queries, encoder, ray_root, args.chunk_size)
        executor.close()
    ray.shutdown()
    print(f"{len(corpus)} documents in chunks of {args.chunk_size}, encoder {args.encoder}, {args.actors} actors; "
          f"ray start-up {startup:.1f} s")
    print("| executor | encode s | index s | build s | search s |\n|---|---|---|---|---|")
    for name, (pipeline, _, build, search) in rows.items():
        t = pipeline.timings
        print(f"| {name} | {t.encode_documents_s:.1f} | {t.index_s:.1f} | {build:.1f} | {search:.2f} |")
    (_, a, build_a, search_a), (_, b, build_b, search_b) = rows["local"], rows["ray"]
    same = np.array_equal(a.doc_ids, b.doc_ids) and np.array_equal(a.scores, b.scores)
    print(f"ray / local: build {build_b / build_a:.2f}x, search {search_b / search_a:.2f}x; identical rankings: {same}")
    report_load("after")


if __name__ == "__main__":
    main()
