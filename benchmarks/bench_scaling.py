"""Cost of encoding, indexing and searching pypi-summaries at 10k, 100k and 782k documents.

    python benchmarks/bench_scaling.py encode --minutes 22        # MiniLM (onnx-int8, 2 threads) over the
                                                                  # whole corpus, chunked into the cache;
                                                                  # resumable, stops between chunks
    python benchmarks/bench_scaling.py table --docs 10000 100000 781610 --methods bm25 exact hnsw pq
    python benchmarks/bench_scaling.py one --method exact --docs 781610   # one row (JSON), used by table
    python benchmarks/bench_scaling.py table --synthetic ...      # before the encoding has finished

Corpus: the first ``--docs`` rows of pypi-summaries (ids = row numbers); queries: the last 1,000
rows, never in the corpus. The MiniLM vectors come from one chunked cache entry of the whole corpus
(781,610 documents), encoded once by ``encode`` (the resumable pipeline path, killable at any
time; ``--minutes`` stops it cleanly before a chunk that would not finish in time, so a run fits a
job limit and the next run resumes); smaller corpora read their first rows from it. ``--backend``
picks the MiniLM backend (default ``onnx-int8``: dynamic int8, cosine ~0.996 to fp32, SciFact
nDCG@10 within 0.005; ``onnx`` for fp32); each backend has its own cache entry.

Every row of the table runs in a fresh process so that its peak RSS (``ru_maxrss``) is its own.
BM25 = ``bm25`` encoder + ``inverted`` index (embedlab-bm25); exact = the core ``exact`` index;
PQ = the core ``pq`` compressor (m = 48, codebooks trained by FAISS on a 65,536-row sample read one
group of 8 subspaces' columns at a time) in the ``exact`` index (codes only; searched 128 queries at a
time through prepared lookup tables); HNSW = ``faiss`` HNSW32. Columns: encode s (BM25: fit + encode;
MiniLM: the encoding seconds recorded in the chunks, scaled to the rows used), PQ training s,
index s (built from the cached vectors one chunk at a time, as the pipeline does), search s for the
1,000 queries at ``--threads`` threads, base RSS (interpreter, libraries, texts, loaded model and
query vectors, before any document vector is read), peak RSS, index bytes per document and the
size of the float32 vectors, the peak of live allocations traced by ``tracemalloc`` from the base
reading on (numpy arrays included; memory-mapped chunks and what the allocator keeps after a free are
not: the JSON's ``traced_peak_mb``), R@10 (PQ, HNSW: the share of the exact top-10 they return, documents
tied with the 10th exact score included). Load average is printed with every row: times are
comparable only when it is below 1.5.
"""

from __future__ import annotations

import argparse
import gc
import gzip
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.embeddings import EmbeddingKind
from embedlab.sampling import sample_positions
from embedlab.shards import ChunkStore, encode_chunks
from embedlab.threads import faiss_threads

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "pypi-summaries" / "pypi-summaries.tsv.gz"
N_QUERIES = 1000
BACKENDS = ("onnx-int8", "onnx", "torch")
METHODS = ("bm25", "exact", "hnsw", "pq")
PQ_M = 48
#: PQ training rows: FAISS's own cap for 256 centroids (256 points per centroid)
PQ_SAMPLE = 65_536


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


def minilm_encoder(backend: str, threads: int | None = None):
    """all-MiniLM-L6-v2 (its own per-chunk progress bar off: the chunk loop shows documents/s and the ETA)."""
    return embedlab.create("encoder", "minilm", backend=backend, num_threads=threads, show_progress=False)


def minilm_chunks(backend: str) -> tuple[ChunkStore, object, embedlab.Corpus, embedlab.Queries]:
    """The chunked cache entry of the whole corpus under ``backend`` (possibly incomplete), the
    encoder, the corpus and the queries."""
    corpus, queries = corpus_and_queries()
    encoder = minilm_encoder(backend)
    cache = EmbeddingCache()
    store = cache.chunk_store(cache.key(encoder, "documents", corpus.content_hash), len(corpus))
    return store, encoder, corpus, queries


class OutOfTime(Exception):
    """Raised between chunks when the next one would not finish before the deadline."""


def within_deadline(encode, deadline: float):
    """``encode`` that refuses to start a chunk it expects to end after ``deadline`` (perf_counter
    seconds), expecting each chunk to take 1.25x as long as the longest one so far."""
    longest = [0.0]

    def encode_before_deadline(texts: list[str]):
        began = time.perf_counter()
        if began + 1.25 * longest[0] > deadline:
            raise OutOfTime
        out = encode(texts)
        longest[0] = max(longest[0], time.perf_counter() - began)
        return out

    return encode_before_deadline


def encode_corpus(backend: str, threads: int, minutes: float | None, progress: bool = True) -> dict:
    """Encode (or resume) the whole corpus chunk by chunk; with ``minutes``, stop cleanly before a
    chunk that would not finish in time. Returns what this run did (documents/s, peak RSS, load)."""
    store, _, corpus, _ = minilm_chunks(backend)
    encoder = minilm_encoder(backend, threads)
    before = set(store.finished(verify=False))
    load_before, start = load_average(), time.perf_counter()
    encode = encoder.encode_documents
    if minutes is not None:
        encode = within_deadline(encode, start + 60 * minutes)
    try:
        encode_chunks(store, corpus.documents(), encode, desc=f"minilm ({backend}) pypi-summaries",
                      progress=progress)
    except OutOfTime:
        pass
    finished = set(store.finished(verify=False))
    new = sorted(finished - before)
    docs = sum(stop - start for start, stop in map(store.bounds, new))
    encode_s = sum(chunk_seconds(store, c) for c in new)
    return {"backend": backend, "threads": threads, "chunks_done": len(finished), "chunks": store.n_chunks,
            "new_chunks": len(new), "new_docs": docs, "encode_s": round(encode_s, 1),
            "docs_per_s": round(docs / encode_s, 1) if encode_s else None,
            "wall_s": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(peak_rss_mb()),
            "load_before": round(load_before, 2), "load_after": round(load_average(), 2),
            "complete": len(finished) == store.n_chunks, "store": str(store.root)}


def chunk_seconds(store: ChunkStore, chunk: int) -> float:
    return float(json.loads((store.chunk_path(chunk) / "manifest.json").read_text())["meta"]["seconds"])


def load_average() -> float:
    return os.getloadavg()[0]


def encoded_rate(backend: str) -> float:
    """Documents per second of the MiniLM chunks finished so far (their recorded seconds)."""
    store, *_ = minilm_chunks(backend)
    done = store.finished(verify=False)
    if not done:
        raise SystemExit("no MiniLM chunk is encoded yet: run `bench_scaling.py encode` for a while first")
    return sum(np.subtract(*store.bounds(c)[::-1]) for c in done) / sum(chunk_seconds(store, c) for c in done)


def run_one(method: str, n_docs: int, threads: int, backend: str, synthetic: bool = False) -> dict:
    load_before = load_average()
    row = {"method": method, "threads": threads, "load": round(load_before, 2)}
    if method == "bm25":
        corpus, queries = corpus_and_queries(n_docs)
        row["docs"] = len(corpus)
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
        n = row["docs"] = min(n_docs, len(read_texts()) - N_QUERIES)
        row["backend"], row["synthetic"] = backend, True
        row["encode_s"] = n / encoded_rate(backend)
        vectors, query_vectors = synthetic_vectors(n, 0), synthetic_vectors(N_QUERIES, 1)
        index = make_index(method, threads)
        if method == "pq":
            train_pq(index, vectors, n, row)
        start = time.perf_counter()
        index.build(vectors)
        row["index_s"] = time.perf_counter() - start
        row["vector_bytes"] = vectors.nbytes
        del vectors
    else:
        store, encoder, corpus, queries = minilm_chunks(backend)
        n = row["docs"] = min(n_docs, len(corpus))
        del corpus  # the texts are only needed for the cache key
        gc.collect()
        row["backend"] = backend
        needed = range(-(-n // store.chunk_size))
        missing = [c for c in needed if not store.chunk_path(c).is_dir()]
        if missing:
            raise SystemExit(f"{len(missing)} MiniLM ({backend}) chunks of the first {n} documents are "
                             "not encoded yet: run `bench_scaling.py encode`")
        # encoding seconds recorded in the chunks, scaled to the rows used
        row["encode_s"] = sum(chunk_seconds(store, c) for c in needed) * n / min(len(store),
                                                                                 len(needed) * store.chunk_size)
        query_vectors = encoder.encode_queries(list(queries.texts))
        warm_up_libraries(query_vectors)
        row["base_rss_mb"] = peak_rss_mb()  # interpreter, libraries, texts, model, queries: before any vector
        tracemalloc.start()  # live allocations of the index stage (numpy arrays included), whatever the allocator keeps
        index = make_index(method, threads)
        if method == "pq":
            train_pq(index, FirstRows(store, n), n, row)
            row["peak_after_train_mb"] = peak_rss_mb()
        start = time.perf_counter()
        index.build_from_chunks(FirstRows(store, n))  # one chunk at a time, as the pipeline does
        row["index_s"] = time.perf_counter() - start
        row["peak_after_index_mb"] = peak_rss_mb()  # the search comes next: which stage set the peak
        row["vector_bytes"] = n * 384 * 4
    from threadpoolctl import threadpool_limits

    with threadpool_limits(threads), faiss_threads(threads if method == "hnsw" else None):
        index.search(query_vectors[:1], 10)  # warm-up (numba compiles the inverted index's kernel)
        start = time.perf_counter()
        found = index.search(query_vectors, 10)
        row["search_s"] = time.perf_counter() - start
    row["bytes_per_doc"] = index.memory_bytes / row["docs"]
    row["peak_rss_mb"] = peak_rss_mb()
    if tracemalloc.is_tracing():
        row["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    if method in ("pq", "hnsw") and not synthetic:  # after the peak: the reference scan is not the index's cost
        row["recall_at_10"] = recall_at_k(FirstRows(store, n), query_vectors, found.indices)
    return row


def warm_up_libraries(queries: np.ndarray) -> None:
    """Search a tiny exact index once, so that the libraries its search loads on first use (numba's
    compiled top-k selection, when installed) count in the base RSS, not in the index stage."""
    tiny = embedlab.create("index", "exact")
    tiny.build(queries[:64])
    tiny.search(queries[:2], 1)


class FirstRows:
    """The first ``n`` rows of a chunk store, read one chunk at a time (what ``build_from_chunks``
    and ``take`` need), even while later chunks are not encoded yet."""

    def __init__(self, store: ChunkStore, n: int) -> None:
        self.store, self.n = store, n
        self.kind = EmbeddingKind.DENSE
        self.dim = store.dim

    def __len__(self) -> int:
        return self.n

    def chunks(self, *, mmap: bool = True):
        for chunk in range(-(-self.n // self.store.chunk_size)):
            start = self.store.bounds(chunk)[0]
            yield start, self.store.load_chunk(chunk, mmap=mmap)[:self.n - start]

    def take(self, positions: np.ndarray, columns: slice | None = None, out: np.ndarray | None = None) -> np.ndarray:
        return self.store.take(positions, columns, out)


def exact_top_k(rows: FirstRows, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and positions of the ``k`` largest inner products, scanning one chunk at a time."""
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best = np.zeros((len(queries), k), np.int64)
    for start, chunk in rows.chunks():
        scores = queries @ np.asarray(chunk).T
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        scores = np.concatenate([best_scores, np.take_along_axis(scores, top, 1)], axis=1)
        positions = np.concatenate([best, top + start], axis=1)
        keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        best_scores, best = np.take_along_axis(scores, keep, 1), np.take_along_axis(positions, keep, 1)
    return best_scores, best


def recall_at_k(rows: FirstRows, queries: np.ndarray, found: np.ndarray) -> float:
    """Share of the exact top-k that ``found`` (positions, -1 = none) retrieves, ties included: a
    found document counts when its exact score reaches the k-th best (pypi-summaries has many
    duplicate texts, so tied documents are interchangeable)."""
    k = found.shape[1]
    best_scores, _ = exact_top_k(rows, queries, k)
    kth = best_scores.min(axis=1)
    ids = np.unique(found[found >= 0])
    vectors = rows.take(ids)
    scores = np.full(found.shape, -np.inf, np.float32)
    valid = found >= 0
    rows_of = np.searchsorted(ids, found[valid])
    scores[valid] = np.einsum("ij,ij->i", np.repeat(queries, k, axis=0).reshape(-1, k, queries.shape[1])[valid],
                              vectors[rows_of])
    return float(np.mean((scores >= kth[:, None] - 1e-6).sum(axis=1) / k))


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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


def fit_pq(rows: object, positions: np.ndarray) -> tuple[object, float]:
    """The core PQ compressor, 48 sub-quantisers of 256 centroids (48 bytes per document), its
    codebooks trained by FAISS's ``ProductQuantizer`` k-means (20 iterations like the core's, seed 0,
    one thread) on the rows ``positions`` of ``rows`` (an array, or chunks read one group of 8
    subspaces' columns at a time: :func:`embedlab.pq.train_codebooks_from_chunks`, 16 MiB of sample
    held), and the training seconds (reading included). The core's scipy k-means takes ~13 s per
    subspace on 65,536 rows here (10 minutes for 48); codes, index and scan are the core's."""
    from embedlab.pq import faiss_trainer, train_codebooks_from_chunks

    trainer = faiss_trainer(256, seed=0, iterations=20, num_threads=1)
    # a cheap fit gives the compressor its shapes (not timed); its codebooks are then replaced
    in_memory = isinstance(rows, np.ndarray)
    first = rows[positions[:1024]] if in_memory else rows.take(positions[:1024])
    compressor = embedlab.create("compressor", "pq", m=PQ_M, iterations=1).fit(first)
    start = time.perf_counter()
    if in_memory:
        centroids = trainer(rows[positions], range(PQ_M))
    else:
        centroids = train_codebooks_from_chunks(rows, positions, m=PQ_M, trainer=trainer).centroids
    return compressor.use_codebooks(centroids), time.perf_counter() - start


def train_pq(index, rows: object, n: int, row: dict) -> None:
    compressor, row["pq_train_s"] = fit_pq(rows, sample_positions(n, PQ_SAMPLE, 0))
    index.use_compressor(compressor)


def table(docs: list[int], methods: list[str], threads: int, backend: str, synthetic: bool) -> None:
    header = (f"{'method':<7} {'docs':>8} {'encode s':>9} {'train s':>8} {'index s':>8} {'search s':>9} "
              f"{'base RSS MB':>11} {'peak RSS MB':>11} {'B/doc':>7} {'vectors MB':>10} {'R@10':>5} {'load':>5}")
    print(header)
    for method in methods:
        for n in docs:
            command = [sys.executable, __file__, "one", "--method", method, "--docs", str(n), "--threads", str(threads),
                       "--backend", backend]
            out = subprocess.run(command + (["--synthetic"] if synthetic else []), capture_output=True, text=True)
            if out.returncode:
                print(f"{method:<7} {n:>8} failed: {out.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            recall = f"{r['recall_at_10']:.3f}" if "recall_at_10" in r else "-"
            print(f"{r['method']:<7} {r['docs']:>8} {r['encode_s']:>9.1f} {r.get('pq_train_s', 0):>8.2f} "
                  f"{r['index_s']:>8.2f} {r['search_s']:>9.2f} {r.get('base_rss_mb', 0):>11.0f} "
                  f"{r['peak_rss_mb']:>11.0f} {r['bytes_per_doc']:>7.1f} {r['vector_bytes'] / 2**20:>10.1f} "
                  f"{recall:>5} {r['load']:>5.2f}{'  synthetic vectors' if r.get('synthetic') else ''}"
                  f"{'  ' + r['backend'] if 'backend' in r else ''}  {json.dumps(r)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    encode = sub.add_parser("encode")
    encode.add_argument("--threads", type=int, default=2, help="ONNX Runtime / torch threads")
    encode.add_argument("--minutes", type=float, default=None,
                        help="stop before a chunk that would end after this many minutes (resume later)")
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
    for command in (encode, one, many):
        command.add_argument("--backend", choices=BACKENDS, default=BACKENDS[0], help="MiniLM backend")
    args = parser.parse_args()
    if args.command == "encode":
        print(json.dumps(encode_corpus(args.backend, args.threads, args.minutes)))
    elif args.command == "one":
        print(json.dumps(run_one(args.method, args.docs, args.threads, args.backend, args.synthetic)))
    else:
        table(args.docs, args.methods, args.threads, args.backend, args.synthetic)


if __name__ == "__main__":
    main()
