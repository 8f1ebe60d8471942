"""MUVERA on SciFact (BEIR test split, 300 queries, 5,183 documents) with MiniLM token vectors.

    python benchmarks/bench_muvera.py [--reps 1 2 5 10 20 40] [--grid 4:16 5:16 5:32 6:16]
        [--k-sim 5] [--d-proj 16] [--r-reps 20] [--candidates 100] [--sweep 10 25 50 100 200 400]
        [--timing-queries 100] [--rounds 3] [--plot docs/benchmarks/muvera_recall.png]

Token vectors come from the ``minilm-tokens`` encoder (embedlab-transformers) through
``embedlab.Pipeline`` with the shared ``EmbeddingCache`` (~/.cache/embedlab): the first run encodes
(tens of minutes on 2 cores), later runs read the cache. Prints

1. recall of the exact-Chamfer top-10 within the FDE top-100 (exact MIPS over FDEs, no rerank)
   as ``R_reps`` grows, for each ``k_sim:d_proj`` of ``--grid`` (a repetition's blocks depend
   only on the seed and the repetition, so the FDE with ``R`` repetitions is the first
   ``R * 2**k_sim * d_proj`` coordinates of the one with more; checked once);
2. end to end: nDCG@10, R@100 (all queries, through the pipelines) and index search latency of
   the ``muvera`` index (inner exact and FAISS HNSW32) against exact Chamfer over the whole
   corpus (the core ``ExactIndex`` on ``MultiVectorEmbeddings``), with the ratios. Latency: the
   indexes' ``search`` of the first ``--timing-queries`` query token vectors (k=100), alternated
   ``--rounds`` times in this process, median;
3. the number of reranked candidates against nDCG@10 and latency, split into query FDE, inner
   index and rerank time (``MuveraIndex.last_timings``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import common
import numpy as np
from embedlab_muvera import FDEConfig, MuveraIndex, encode_documents_fde, encode_queries_fde

import embedlab
from embedlab import MultiVectorEmbeddings, Pipeline, Ranking
from embedlab.cache import EmbeddingCache
from embedlab.datasets.beir import load_beir
from embedlab.index import ExactIndex

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "beir"
MEASURES = ["nDCG@10", "R@100"]


def cached_queries(cache: EmbeddingCache, encoder: object, queries: embedlab.Queries) -> MultiVectorEmbeddings:
    """The query token vectors the pipelines read (same cache entry)."""
    key = cache.key(encoder, "queries", queries.content_hash)
    return cache.get_or_compute(key, lambda: encoder.encode_queries(list(queries.texts))).embeddings


def fde_recall(queries: MultiVectorEmbeddings, documents: MultiVectorEmbeddings, truth: np.ndarray,
               k_sim: int, d_proj: int, reps: list[int], depth: int = 100) -> list[float]:
    """Mean fraction of each query's exact top-10 found in its FDE top-``depth``, per R_reps."""
    config = FDEConfig(k_sim=k_sim, d_proj=d_proj, R_reps=max(reps))
    q_fde, d_fde = encode_queries_fde(queries, config), encode_documents_fde(documents, config)
    width = (1 << k_sim) * d_proj
    small = FDEConfig(k_sim=k_sim, d_proj=d_proj, R_reps=min(reps))
    assert np.allclose(encode_queries_fde(queries, small), q_fde[:, :min(reps) * width], rtol=1e-5, atol=1e-6)
    out = []
    for r in reps:
        products = q_fde[:, :r * width] @ d_fde[:, :r * width].T
        top = np.argpartition(-products, depth, axis=1)[:, :depth]
        out.append(float(np.mean([np.isin(t, found).mean() for t, found in zip(truth, top)])))
    return out


def alternate(searches: dict[str, object], rounds: int) -> dict[str, float]:
    """Median seconds of each search, the searches alternated ``rounds`` times."""
    seconds: dict[str, list[float]] = {name: [] for name in searches}
    for _ in range(rounds):
        for name, search in searches.items():
            start = time.perf_counter()
            search()
            seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, nargs="+", default=[1, 2, 5, 10, 20, 40])
    parser.add_argument("--grid", nargs="*", default=["4:16", "5:16", "5:32", "6:16"],
                        help="k_sim:d_proj cells of the recall table (none: skip it)")
    parser.add_argument("--k-sim", type=int, default=5)
    parser.add_argument("--d-proj", type=int, default=16)
    parser.add_argument("--r-reps", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--sweep", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400])
    parser.add_argument("--timing-queries", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    common.report_load()

    dataset = load_beir(SCIFACT)
    split = dataset.split("test")
    encoder = embedlab.create("encoder", "minilm-tokens")
    cache = EmbeddingCache()

    exact = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"), cache=cache, name="exact-chamfer")
    exact.build(dataset.corpus)
    start = time.perf_counter()
    exact_ranking = exact.search(split.queries, k=100)
    exact_s = time.perf_counter() - start

    muvera_params = dict(k_sim=args.k_sim, d_proj=args.d_proj, R_reps=args.r_reps, candidates=args.candidates)
    variants = {"muvera, inner exact": {"name": "exact"},
                "muvera, inner faiss HNSW32": {"name": "faiss", "factory": "HNSW32", "efSearch": 128}}
    pipelines = {}
    for label, inner in variants.items():
        pipeline = Pipeline(encoder=encoder, index=MuveraIndex(**muvera_params, inner_index=inner), cache=cache,
                            name=label)
        pipeline.build(dataset.corpus)
        pipelines[label] = pipeline

    main_index = pipelines["muvera, inner exact"].index
    documents = main_index.documents
    queries = cached_queries(cache, encoder, split.queries)
    n = len(split.queries)
    print(f"SciFact test: {n} queries ({queries.vectors.shape[0]} token vectors), {len(documents)} documents "
          f"({documents.vectors.shape[0]} token vectors, {documents.vectors.nbytes / 2**30:.2f} GiB float32)\n")

    position = {doc: i for i, doc in enumerate(dataset.corpus.ids)}
    truth = np.array([[position[d] for d in ids[:10]] for ids in exact_ranking.doc_ids])
    curves = {}
    if args.grid:
        print("Recall of the exact-Chamfer top-10 within the FDE top-100 (exact MIPS over FDEs, no rerank)\n")
        print("| k_sim | d_proj | " + " | ".join(f"R={r} (dim)" for r in args.reps) + " |")
        print("|---|---|" + "---|" * len(args.reps))
    for cell in args.grid:
        k_sim, d_proj = (int(v) for v in cell.split(":"))
        curves[cell] = fde_recall(queries, documents, truth, k_sim, d_proj, args.reps)
        dims = [r * (1 << k_sim) * d_proj for r in args.reps]
        print(f"| {k_sim} | {d_proj} | " + " | ".join(f"{v:.3f} ({d})" for v, d in zip(curves[cell], dims)) + " |")

    subset = queries.take(np.arange(min(args.timing_queries, n)))
    searches = {"exact": lambda: exact.index.search(subset, 100)}
    searches.update({label: (lambda p=p: p.index.search(subset, 100)) for label, p in pipelines.items()})
    seconds = alternate(searches, args.rounds)
    base = embedlab.evaluate(exact_ranking, split.qrels, MEASURES).aggregates
    per_query = {label: 1000 * value / len(subset) for label, value in seconds.items()}
    print(f"\nEnd to end, k=100, (R_reps, k_sim, d_proj) = ({args.r_reps}, {args.k_sim}, {args.d_proj}), "
          f"candidates={args.candidates}; quality over all {n} queries, search latency = median of "
          f"{args.rounds} alternated index searches of the first {len(subset)} queries\n")
    print("| system | nDCG@10 | R@100 | nDCG@10 ratio | search ms/query | speed-up | index memory |")
    print("|---|---|---|---|---|---|---|")
    print(f"| exact Chamfer (core ExactIndex, multi-vector) | {base['nDCG@10']:.4f} | {base['R@100']:.4f} | 1.000 | "
          f"{per_query['exact']:.1f} | 1.0x | {exact.index.memory_bytes / 2**20:.0f} MiB |")
    for label, pipeline in pipelines.items():
        values = embedlab.evaluate(pipeline.search(split.queries, k=100), split.qrels, MEASURES).aggregates
        print(f"| {label} | {values['nDCG@10']:.4f} | {values['R@100']:.4f} | "
              f"{values['nDCG@10'] / base['nDCG@10']:.3f} | {per_query[label]:.1f} | "
              f"{per_query['exact'] / per_query[label]:.1f}x | {pipeline.index.memory_bytes / 2**20:.0f} MiB |")
    print(f"\nexact Chamfer, all {n} queries through the pipeline: {exact_s:.1f} s")

    print("\nCandidates reranked (muvera, inner exact, k=10): quality over all queries, latency and its parts "
          "on the timing subset (one search each)\n")
    print("| candidates | nDCG@10 | ratio | ms/query | speed-up | query FDE ms | inner ms | rerank ms |")
    print("|---|---|---|---|---|---|---|---|")
    for depth in args.sweep:
        result = main_index.search(queries, 10, candidates=depth)
        ranking = Ranking.from_search(split.queries.ids, result, dataset.corpus.ids)
        ndcg = embedlab.evaluate(ranking, split.qrels, ["nDCG@10"]).aggregates["nDCG@10"]
        start = time.perf_counter()
        main_index.search(subset, 10, candidates=depth)
        ms = 1000 * (time.perf_counter() - start) / len(subset)
        parts = {key: 1000 * value / len(subset) for key, value in main_index.last_timings.items()}
        print(f"| {depth} | {ndcg:.4f} | {ndcg / base['nDCG@10']:.3f} | {ms:.1f} | {per_query['exact'] / ms:.1f}x | "
              f"{parts['encode_s']:.2f} | {parts['inner_s']:.2f} | {parts['rerank_s']:.1f} |")

    if args.plot is not None and curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 4))
        for cell, values in curves.items():
            k_sim, d_proj = cell.split(":")
            ax.plot(args.reps, values, marker="o", label=f"k_sim={k_sim}, d_proj={d_proj}")
        ax.set_xscale("log")
        ax.set_xticks(args.reps, [str(r) for r in args.reps])
        ax.set_xlabel("R_reps")
        ax.set_ylabel("exact-Chamfer top-10 in FDE top-100")
        ax.set_title("MUVERA FDE recall on SciFact (MiniLM tokens)")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
