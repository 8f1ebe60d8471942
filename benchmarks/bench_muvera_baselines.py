"""MUVERA's comparisons that fit here: FDE candidates against the single-vector heuristics and a
PLAID-style centroid-interaction first stage, at equal numbers of reranked candidates; and MUVERA's
speed-up over exact Chamfer as the corpus grows.

    python benchmarks/bench_muvera_baselines.py                   # python-stdlib, MiniLM token vectors
    python benchmarks/bench_muvera_baselines.py --dataset scifact
    python benchmarks/bench_muvera_baselines.py --parts quality --methods plaid   # one family only

Token vectors: the ``minilm-tokens`` encoder (ONNX backend) through the shared embedding cache.
Truth: each test query's exact Chamfer (MaxSim) top 10 over the whole corpus (core ExactIndex on
multi-vector embeddings). Every first stage proposes candidates, the top ``N`` of them are
reranked by exact Chamfer, and the table gives the recall of the exact top 10 after reranking,
for each ``N`` (MUVERA's Table 1 asks the same: how many candidates reach a recall):

* **FDE** (MUVERA): exact MIPS over the Fixed Dimensional Encodings, (R_reps, k_sim, d_proj) =
  (20, 5, 16) as the plugin's defaults;
* **pooled single vector**: query = sum of its token vectors, document = mean of its token
  vectors, exact MIPS (the FDE with one partition and no projection);
* **single-vector heuristic** (MUVERA's "SV", ColBERT's first stage): each query token retrieves its
  ``--sv-tokens`` nearest document tokens; documents are ranked by the sum over query tokens of
  their best retrieved token score (a lower bound of Chamfer);
* **PLAID-style centroid interaction** (PLAID's stages 1-3 without residual decompression): k-means
  centroids over all document tokens, each document token replaced by its centroid; each query
  token probes its ``--nprobe`` nearest centroids for candidates, ranked by the Chamfer score of
  the query against the candidate's centroids.

Speed-up: exact Chamfer (ExactIndex) against the ``muvera`` index (inner exact, 100 candidates) on
seeded subsets of the corpus, ``--rounds`` alternated rounds, median; the load average is printed.
"""

from __future__ import annotations

import argparse
import time

import common
import faiss
import numpy as np
from embedlab_muvera import FDEConfig, MuveraIndex, encode_documents_fde, encode_queries_fde
from threadpoolctl import threadpool_limits

import embedlab
from embedlab import MultiVectorEmbeddings
from embedlab.cache import EmbeddingCache
from embedlab.index import ExactIndex
from embedlab.sampling import sample_positions

K = 10


def tokens(name: str, threads: int | None = None) -> tuple[MultiVectorEmbeddings, MultiVectorEmbeddings]:
    dataset = common.load(name)
    split = dataset.split("test")
    encoder = embedlab.create("encoder", "minilm-tokens", backend="onnx", num_threads=threads)
    cache = EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", dataset.corpus.content_hash),
                                lambda: encoder.encode_documents(dataset.corpus.documents())).embeddings
    queries = cache.get_or_compute(cache.key(encoder, "queries", split.queries.content_hash),
                                   lambda: encoder.encode_queries(list(split.queries.texts))).embeddings
    return docs, queries


def rows_of(items: MultiVectorEmbeddings) -> list[np.ndarray]:
    return [items.vectors[items.offsets[i]:items.offsets[i + 1]] for i in range(len(items))]


def chamfer(query: np.ndarray, doc: np.ndarray) -> float:
    return float((query @ doc.T).max(axis=1).sum())


def recall_after_rerank(order: np.ndarray, truth: np.ndarray, q_rows: list, d_rows: list, n: int) -> float:
    """Recall of the exact top 10 after reranking each query's first ``n`` candidates exactly."""
    hits = []
    for qi, candidates in enumerate(order):
        chosen = [c for c in candidates[:n] if c >= 0]
        scores = np.array([chamfer(q_rows[qi], d_rows[c]) for c in chosen])
        top = np.asarray(chosen)[np.argsort(-scores, kind="stable")[:K]] if chosen else np.array([], int)
        hits.append(len(set(top.tolist()) & set(truth[qi].tolist())) / K)
    return float(np.mean(hits))


def fde_order(docs: MultiVectorEmbeddings, queries: MultiVectorEmbeddings, depth: int, **config: int) -> np.ndarray:
    cfg = FDEConfig(**config)
    scores = encode_queries_fde(queries, cfg) @ encode_documents_fde(docs, cfg).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :depth]


def pooled_order(d_rows: list, q_rows: list, depth: int) -> np.ndarray:
    doc_means = np.stack([d.mean(axis=0) for d in d_rows])
    scores = np.stack([q.sum(axis=0) for q in q_rows]) @ doc_means.T
    return np.argsort(-scores, axis=1, kind="stable")[:, :depth]


def sv_order(docs: MultiVectorEmbeddings, q_rows: list, depth: int, per_token: int) -> np.ndarray:
    owner = np.repeat(np.arange(len(docs)), np.diff(docs.offsets))
    index = faiss.IndexFlatIP(docs.vectors.shape[1])
    index.add(np.ascontiguousarray(docs.vectors, dtype=np.float32))
    out = np.full((len(q_rows), depth), -1, np.int64)
    for qi, query in enumerate(q_rows):
        scores, ids = index.search(np.ascontiguousarray(query, dtype=np.float32), per_token)
        best: dict[int, np.ndarray] = {}
        for t in range(len(query)):
            for s, i in zip(scores[t], ids[t]):
                row = best.setdefault(int(owner[i]), np.zeros(len(query)))
                row[t] = max(row[t], s)
        ranked = sorted(best, key=lambda d: -best[d].sum())[:depth]
        out[qi, :len(ranked)] = ranked
    return out


def plaid_centroids(docs: MultiVectorEmbeddings, n_centroids: int, seed: int,
                    sample: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
    """Spherical k-means centroids over the document tokens (PLAID's codebook; trained on a seeded
    sample of ``sample`` tokens when given, as PLAID trains on a sample) and each document's distinct
    centroid ids (all its tokens replaced by their nearest centroid)."""
    vectors = np.ascontiguousarray(docs.vectors, dtype=np.float32)
    kmeans = faiss.Kmeans(vectors.shape[1], n_centroids, niter=10, seed=seed, spherical=True, verbose=False,
                          max_points_per_centroid=1 << 20)
    rows = np.random.default_rng(seed).choice(len(vectors), sample, replace=False) \
        if 0 < sample < len(vectors) else slice(None)
    kmeans.train(vectors[rows])
    _, assign = kmeans.index.search(vectors, 1)
    return kmeans.centroids, [np.unique(assign[docs.offsets[i]:docs.offsets[i + 1], 0]) for i in range(len(docs))]


def plaid_order(centroids: np.ndarray, doc_codes: list[np.ndarray], q_rows: list, depth: int,
                nprobe: int) -> np.ndarray:
    """PLAID stages 1-3: query tokens probe their ``nprobe`` nearest centroids for candidates,
    ranked by the Chamfer score of the query against each candidate's centroids."""
    members: dict[int, set[int]] = {}
    for d, codes in enumerate(doc_codes):
        for c in codes.tolist():
            members.setdefault(c, set()).add(d)
    out = np.full((len(q_rows), depth), -1, np.int64)
    for qi, query in enumerate(q_rows):
        sims = query @ centroids.T  # (tokens, centroids)
        probes = np.argsort(-sims, axis=1)[:, :nprobe]
        candidates = sorted({d for c in np.unique(probes).tolist() for d in members.get(c, ())})
        if not candidates:
            continue
        scores = np.array([sims[:, doc_codes[d]].max(axis=1).sum() for d in candidates])
        ranked = np.asarray(candidates)[np.argsort(-scores, kind="stable")[:depth]]
        out[qi, :len(ranked)] = ranked
    return out


def quality(docs: MultiVectorEmbeddings, queries: MultiVectorEmbeddings, args: argparse.Namespace) -> None:
    exact = ExactIndex()
    exact.build(docs)
    truth = exact.search(queries, K).indices
    d_rows, q_rows = rows_of(docs), rows_of(queries)
    depth = max(args.candidates)
    methods = set(args.methods)
    generators = {}
    if "fde" in methods:
        generators["FDE (MUVERA 20,5,16)"] = lambda: fde_order(docs, queries, depth, R_reps=20, k_sim=5, d_proj=16)
    if "pooled" in methods:
        generators["pooled single vector (sum q / mean d)"] = lambda: pooled_order(d_rows, q_rows, depth)
    for per_token in args.sv_tokens if "sv" in methods else ():
        generators[f"single-vector heuristic ({per_token} tokens per query token)"] = \
            lambda per_token=per_token: sv_order(docs, q_rows, depth, per_token)
    if "plaid" in methods:
        rule = int(2 ** np.floor(np.log2(16 * np.sqrt(len(docs.vectors)))))
        n_centroids = args.centroids or rule
        start = time.perf_counter()
        centroids, doc_codes = plaid_centroids(docs, n_centroids, args.seed, args.kmeans_sample)
        trained = min(args.kmeans_sample or len(docs.vectors), len(docs.vectors))
        print(f"PLAID-style codebook: {n_centroids} k-means centroids (PLAID's rule 2^floor(log2(16 sqrt(tokens))) "
              f"gives {rule}) trained on {trained:,} of {len(docs.vectors):,} document tokens in "
              f"{time.perf_counter() - start:.0f} s (not counted in ms/query)", flush=True)
    for nprobe in args.nprobe if "plaid" in methods else ():
        generators[f"PLAID-style centroid interaction ({n_centroids} centroids, nprobe {nprobe})"] = \
            lambda nprobe=nprobe: plaid_order(centroids, doc_codes, q_rows, depth, nprobe)
    print(f"\nrecall of the exact Chamfer top-{K} after reranking the first N candidates exactly "
          f"({len(queries)} queries, {len(docs)} documents, {len(docs.vectors):,} document tokens)")
    print("| first stage | " + " | ".join(f"N={n}" for n in args.candidates) + " | candidates ms/query |")
    print("|---|" + "---|" * (len(args.candidates) + 1))
    for label, make in generators.items():
        start = time.perf_counter()
        order = make()
        ms = 1000 * (time.perf_counter() - start) / len(queries)
        cells = [f"{recall_after_rerank(order, truth, q_rows, d_rows, n):.3f}" for n in args.candidates]
        print(f"| {label} | " + " | ".join(cells) + f" | {ms:.1f} |", flush=True)


def speed(docs: MultiVectorEmbeddings, queries: MultiVectorEmbeddings, args: argparse.Namespace) -> None:
    d_rows, q_rows = rows_of(docs), rows_of(queries)
    timing = MultiVectorEmbeddings.from_list(q_rows[:args.timing_queries])
    print(f"\nspeed-up of muvera (inner exact, {args.rerank} candidates) over exact Chamfer by corpus size "
          f"({args.timing_queries} queries, k=10, median of {args.rounds} alternated rounds)")
    print("| documents | tokens | exact Chamfer ms/query | muvera ms/query | speed-up | recall of exact top-10 "
          "| load |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        size = min(size, len(d_rows))
        chosen = sample_positions(len(d_rows), size, seed=args.seed)
        subset = MultiVectorEmbeddings.from_list([d_rows[i] for i in chosen])
        exact = ExactIndex()
        exact.build(subset)
        muvera = MuveraIndex(candidates=args.rerank)
        muvera.build(subset)
        times: dict[str, list[float]] = {"exact": [], "muvera": []}
        results = {}
        for _ in range(args.rounds):
            for name, index in (("exact", exact), ("muvera", muvera)):
                start = time.perf_counter()
                results[name] = index.search(timing, K)
                times[name].append(time.perf_counter() - start)
        ratio = float(np.median(np.array(times["exact"]) / np.array(times["muvera"])))
        pairs = zip(results["exact"].indices, results["muvera"].indices)
        found = np.mean([len(set(a) & set(b)) / K for a, b in pairs])
        ms = {name: 1000 * float(np.median(t)) / len(timing) for name, t in times.items()}
        print(f"| {size:,} | {len(subset.vectors):,} | {ms['exact']:.1f} | {ms['muvera']:.1f} | {ratio:.1f}x | "
              f"{found:.3f} | {common.load_text()} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="python-stdlib", choices=("python-stdlib", "scifact"))
    parser.add_argument("--candidates", type=int, nargs="+", default=[10, 25, 50, 100, 200])
    parser.add_argument("--sv-tokens", type=int, nargs="+", default=[20, 100],
                        help="document tokens each query token retrieves (swept: the baseline's knob)")
    parser.add_argument("--centroids", type=int, default=0,
                        help="PLAID-style k-means centroids (0: 2^floor(log2(16 sqrt(tokens))))")
    parser.add_argument("--kmeans-sample", type=int, default=0,
                        help="train the PLAID-style k-means on this many sampled tokens (0: all)")
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1, 2, 4],
                        help="centroids each query token probes (swept: the baseline's knob)")
    parser.add_argument("--methods", nargs="+", choices=("fde", "pooled", "sv", "plaid"),
                        default=["fde", "pooled", "sv", "plaid"], help="first stages of the quality part")
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 1000, 2000, 4000])
    parser.add_argument("--rerank", type=int, default=100)
    parser.add_argument("--timing-queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parts", nargs="+", choices=("quality", "speed"), default=["quality", "speed"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for encoding, FAISS and BLAS in the quality part (default: all)")
    args = parser.parse_args()
    common.report_load()
    docs, queries = tokens(args.dataset, args.threads)
    if "quality" in args.parts:
        if args.threads:
            faiss.omp_set_num_threads(args.threads)
        with threadpool_limits(limits=args.threads):
            quality(docs, queries, args)
    if "speed" in args.parts:
        speed(docs, queries, args)


if __name__ == "__main__":
    main()
