"""Cost of encoding, indexing and searching pypi-summaries at 10k, 100k and 782k documents.

    python benchmarks/bench_scaling.py encode                     # MiniLM (ONNX) over the whole corpus,
                                                                  # chunked into the cache; resumable
    python benchmarks/bench_scaling.py table --docs 10000 100000 781610 --methods bm25 exact hnsw pq
    python benchmarks/bench_scaling.py one --method exact --docs 781610   # one row (JSON), used by table
    python benchmarks/bench_scaling.py table --synthetic ...      # before the encoding has finished

Corpus: the first ``--docs`` rows of pypi-summaries (ids = row numbers); queries: the last 1,000
rows, never in the corpus. The MiniLM vectors come from one chunked cache entry of the whole corpus
(781,610 documents), encoded once by ``encode`` (the resumable pipeline path, killable at any
time); smaller corpora read their first rows from it. Every row of the table runs in a fresh
process so that its peak RSS (``ru_maxrss``) is its own. BM25 is searched with the ``inverted``
index (embedlab-bm25). Columns: encode s (BM25: fit + encode;
MiniLM: the encoding seconds recorded in the chunks, scaled to the rows used), index s, search s
for the 1,000 queries at ``--threads`` threads, peak RSS, index bytes per document and the size of
the float32 vectors. Load average is printed with every row: times are comparable only when it is
below 1.5.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.executors import LocalExecutor
from embedlab.shards import ChunkStore
from embedlab.threads import faiss_threads

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pypi-summaries" / "pypi-summaries.tsv.gz"
N_QUERIES = 1000
ENCODER = {"name": "minilm", "backend": "onnx"}
METHODS = ("bm25", "exact", "hnsw", "pq")


def read_texts() -> list[str]:
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        column = header.index("summary")
        return [line.rstrip("\n").split("\t")[column] for line in handle]


def corpus_and_queries(n_docs: int | None = None) -> tuple[embedlab.Corpus, embedlab.Queries]:
    texts = read_texts()
    documents, held_out = texts[:-N_QUERIES], texts[-N_QUERIES:]
    documents = documents[:n_docs]
    corpus = embedlab.Corpus(ids=[str(i) for i in range(len(documents))], texts=documents)
    queries = embedlab.Queries(ids=[f"q{i}" for i in range(N_QUERIES)], texts=held_out)
    return corpus, queries


def minilm_store(progress: bool = True) -> tuple[ChunkStore, object]:
    """The chunked cache entry of the whole corpus (encoded, or resumed, when incomplete)."""
    corpus, _ = corpus_and_queries()
    encoder = embedlab.create("encoder", ENCODER["name"], **{k: v for k, v in ENCODER.items() if k != "name"})
    cache = EmbeddingCache()
    key = cache.key(encoder, "documents", corpus.content_hash)
    store = cache.chunk_store(key, len(corpus))
    LocalExecutor().encode(encoder, corpus.documents(), store, desc="minilm (onnx) pypi-summaries",
                           progress=progress)
    return store, encoder


def load_average() -> float:
    return os.getloadavg()[0]


def encoded_rate() -> float:
    """Documents per second of the MiniLM chunks finished so far (their recorded seconds)."""
    corpus, _ = corpus_and_queries()
    encoder = embedlab.create("encoder", ENCODER["name"], **{k: v for k, v in ENCODER.items() if k != "name"})
    cache = EmbeddingCache()
    store = cache.chunk_store(cache.key(encoder, "documents", corpus.content_hash), len(corpus))
    done = store.finished(verify=False)
    if not done:
        raise SystemExit("no MiniLM chunk is encoded yet: run `bench_scaling.py encode` for a while first")
    seconds = sum(json.loads((store.chunk_path(c) / "manifest.json").read_text())["meta"]["seconds"] for c in done)
    return sum(np.subtract(*store.bounds(c)[::-1]) for c in done) / seconds


def run_one(method: str, n_docs: int, threads: int, synthetic: bool = False) -> dict:
    load_before = load_average()
    corpus, queries = corpus_and_queries(n_docs)
    row = {"method": method, "docs": len(corpus), "threads": threads, "load": round(load_before, 2)}
    if method == "bm25":
        encoder = embedlab.create("encoder", "bm25")
        start = time.perf_counter()
        encoder.fit(corpus.documents())
        documents = encoder.encode_documents(corpus.documents())
        row["encode_s"] = time.perf_counter() - start
        index = embedlab.create("index", "inverted")
        start = time.perf_counter()
        index.build(documents)
        row["index_s"] = time.perf_counter() - start
        del documents
        query_vectors = encoder.encode_queries(list(queries.texts))
        row["vector_bytes"] = 0
    elif synthetic:
        row["encode_s"] = len(corpus) / encoded_rate()
        row["synthetic"] = True
        vectors, query_vectors = synthetic_vectors(len(corpus), 0), synthetic_vectors(N_QUERIES, 1)
        index = make_index(method, threads)
        start = time.perf_counter()
        if method == "pq":
            index.use_compressor(fit_pq(vectors[np.sort(np.random.default_rng(0).choice(
                len(corpus), min(len(corpus), 100_000), replace=False))]))
        index.build(vectors)
        row["index_s"] = time.perf_counter() - start
        row["vector_bytes"] = vectors.nbytes
        del vectors
    else:
        store, encoder = minilm_store(progress=False)
        row["encode_s"] = store.seconds() * len(corpus) / len(store)
        query_vectors = encoder.encode_queries(list(queries.texts))
        index = make_index(method, threads)
        start = time.perf_counter()
        if method == "pq":
            index.use_compressor(fit_pq(store.take(np.sort(np.random.default_rng(0).choice(
                len(corpus), min(len(corpus), 100_000), replace=False)))))
        if len(corpus) == len(store):
            index.build_from_chunks(store)
        else:
            index.build(store.take(np.arange(len(corpus))))
        row["index_s"] = time.perf_counter() - start
        row["vector_bytes"] = len(corpus) * 384 * 4
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads), faiss_threads(threads if method == "hnsw" else None):
        index.search(query_vectors[:1], 10)  # warm-up (numba compiles the inverted index's kernel)
        start = time.perf_counter()
        index.search(query_vectors, 10)
        row["search_s"] = time.perf_counter() - start
    row["bytes_per_doc"] = index.memory_bytes / len(corpus)
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def synthetic_vectors(n: int, seed: int, dim: int = 384, clusters: int = 1000) -> np.ndarray:
    """Float32 unit vectors around fixed random centres, generated in blocks (bounded memory)."""
    centres = np.random.default_rng(12345).standard_normal((clusters, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        block = centres[rng.integers(0, clusters, m)] + 0.6 * rng.standard_normal((m, dim), dtype=np.float32)
        out[start:start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def make_index(method: str, threads: int):
    if method == "hnsw":
        return embedlab.create("index", "faiss", factory="HNSW32", efSearch=64, num_threads=threads)
    return embedlab.create("index", "exact")


def fit_pq(sample: np.ndarray):
    """The core PQ compressor, 48 sub-quantisers of 256 centroids (48 bytes per document)."""
    return embedlab.create("compressor", "pq", m=48).fit(sample)


def table(docs: list[int], methods: list[str], threads: int, synthetic: bool) -> None:
    header = (f"{'method':<7} {'docs':>8} {'encode s':>9} {'index s':>8} {'search s':>9} {'peak RSS MB':>11} "
              f"{'B/doc':>7} {'vectors MB':>10} {'load':>5}")
    print(header)
    for method in methods:
        for n in docs:
            command = [sys.executable, __file__, "one", "--method", method, "--docs", str(n), "--threads", str(threads)]
            out = subprocess.run(command + (["--synthetic"] if synthetic else []), capture_output=True, text=True)
            if out.returncode:
                print(f"{method:<7} {n:>8} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{r['method']:<7} {r['docs']:>8} {r['encode_s']:>9.1f} {r['index_s']:>8.2f} {r['search_s']:>9.2f} "
                  f"{r['peak_rss_mb']:>11.0f} {r['bytes_per_doc']:>7.1f} {r['vector_bytes'] / 2**20:>10.1f} "
                  f"{r['load']:>5.2f}{'  synthetic vectors' if r.get('synthetic') else ''}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("encode")
    one = sub.add_parser("one")
    one.add_argument("--method", choices=METHODS, required=True)
    one.add_argument("--docs", type=int, required=True)
    one.add_argument("--threads", type=int, default=1)
    one.add_argument("--synthetic", action="store_true")
    many = sub.add_parser("table")
    many.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000, 781_610])
    many.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    many.add_argument("--threads", type=int, default=1)
    many.add_argument("--synthetic", action="store_true")
    args = parser.parse_args()
    if args.command == "encode":
        store, _ = minilm_store()
        print(f"{len(store)} documents in {store.n_chunks} chunks, {store.seconds():.0f} s of encoding "
              f"({len(store) / store.seconds():.0f} docs/s), {store.root}")
    elif args.command == "one":
        print(json.dumps(run_one(args.method, args.docs, args.threads, args.synthetic)))
    else:
        table(args.docs, args.methods, args.threads, args.synthetic)


if __name__ == "__main__":
    main()
