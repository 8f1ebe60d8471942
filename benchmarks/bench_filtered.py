"""Filtered nearest-neighbour search: recall@10 against exact filtered search and queries per
second of every strategy of embedlab-filtered, at selectivities of about 0.5 %, 5 % and 50 %.

    python benchmarks/bench_filtered.py                                   # python-stdlib, MiniLM
    python benchmarks/bench_filtered.py --dataset pypi --docs 100000 --queries 500
    python benchmarks/bench_filtered.py --plot docs/benchmarks/filtered.png

Embeddings: all-MiniLM-L6-v2 (the ``minilm`` encoder, default config) through
:class:`embedlab.cache.EmbeddingCache` under the keys :class:`embedlab.Pipeline` uses, so a rerun (or
another benchmark) does not encode again. Every query gets its own filter on real attributes
(per-query filters), drawn from a seed independently of the query text:

* python-stdlib (3,767 documents, 360 test queries): 0.5 % = ``{"package": P}`` for a package
  holding 0.3-0.8 % of the documents; 5 % = ``{"package": {"in": [...]}}`` over packages adding up to
  4-6 %; 50 % = ``{"length": {"gte": a, "lt": b}}``, a window over half of the source lengths.
* pypi (a seeded sample of ``--docs`` package summaries, ``--queries`` other summaries as queries):
  ``{"month": {"gte": a, "lt": b}}`` windows of the release month holding 0.5 %, 5 % or 50 %.
  MiniLM on 100k texts takes hours on two shared CPU cores, so by default these vectors are a
  256-d Gaussian random projection of BM25 (``--vectors minilm`` for the real encoder).

The truth is the core exact index under the same filter. QPS is the median of ``--repeats``
timed searches of all queries (batched, ``--threads`` threads for numba, FAISS and BLAS), so the
ratios between strategies of one run are what to compare on a shared machine.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import itertools
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import common
import numpy as np
from tqdm import tqdm

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.dataset import Corpus, Queries
from embedlab.filters import resolve_filter
from embedlab.index import ExactIndex

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
TARGETS = (0.005, 0.05, 0.5)
K = 10


# -- data -----------------------------------------------------------------------------------


def encode(corpus: Corpus, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM document and query vectors through the shared embedding cache (Pipeline's keys)."""
    encoder, cache = common.encoder("minilm"), EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", corpus.content_hash),
                                lambda: encoder.encode_documents(corpus.documents()))
    found = cache.get_or_compute(cache.key(encoder, "queries", queries.content_hash),
                                 lambda: encoder.encode_queries(list(queries.texts)))
    return np.asarray(docs.embeddings, np.float32), np.asarray(found.embeddings, np.float32)


def bm25_projection(corpus: Corpus, queries: Queries, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """BM25 vectors (fitted on the documents) times a seeded Gaussian matrix, normalised: dense
    vectors whose neighbourhoods follow the lexical ones, at a fraction of MiniLM's cost."""
    encoder = embedlab.create("encoder", "bm25")
    encoder.fit(corpus.documents())
    docs, found = encoder.encode_documents(corpus.documents()), encoder.encode_queries(list(queries.texts))
    projection = np.random.default_rng(seed).standard_normal((docs.shape[1], dim), dtype=np.float32)
    dense = [np.asarray(m @ projection, dtype=np.float32) for m in (docs, found)]
    return tuple(d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12) for d in dense)  # type: ignore[return-value]


def stdlib_filters(attributes: dict[str, np.ndarray], n_queries: int,
                   rng: np.random.Generator) -> dict[float, list[dict[str, Any]]]:
    """Per-query filters of the three selectivities on python-stdlib's real attributes."""
    packages, counts = np.unique(attributes["package"], return_counts=True)
    n = attributes["package"].size
    small = packages[(counts >= 0.003 * n) & (counts <= 0.008 * n)]
    minor = np.flatnonzero(counts < 0.02 * n)
    lengths = np.sort(attributes["length"])

    def package_set() -> dict[str, Any]:
        while True:
            chosen, total = [], 0
            for i in rng.permutation(minor):
                chosen.append(str(packages[i]))
                total += counts[i]
                if total >= 0.04 * n:
                    break
            if total <= 0.06 * n:
                return {"package": {"in": chosen}}

    def length_window() -> dict[str, Any]:
        start = int(rng.integers(0, n // 2))
        return {"length": {"gte": int(lengths[start]), "lt": int(lengths[start + n // 2])}}

    return {0.005: [{"package": str(rng.choice(small))} for _ in range(n_queries)],
            0.05: [package_set() for _ in range(n_queries)],
            0.5: [length_window() for _ in range(n_queries)]}


def month_filters(months: np.ndarray, n_queries: int, rng: np.random.Generator) -> dict[float, list[dict[str, Any]]]:
    """Per-query release-month windows holding about each target fraction of the documents."""
    ordered = np.sort(months[~np.isnan(months)])
    n = months.size

    def window(target: float) -> dict[str, Any]:
        while True:
            start = int(rng.integers(0, ordered.size - int(target * n)))
            low, high = ordered[start], ordered[start + int(target * n)]
            passing = int(((months >= low) & (months < high)).sum())
            if 0.6 * target * n <= passing <= 1.6 * target * n:
                return {"month": {"gte": float(low), "lt": float(high)}}

    return {t: [window(t) for _ in range(n_queries)] for t in TARGETS}


def load_stdlib(seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[float, list]]:
    dataset = embedlab.load_dataset("python-stdlib")
    queries = dataset.split("test").queries
    docs, found = encode(dataset.corpus, queries)
    attributes = dict(dataset.corpus.attributes)
    return docs, found, attributes, stdlib_filters(attributes, len(queries), np.random.default_rng(seed))


def load_pypi(n_docs: int, n_queries: int, seed: int, vectors: str) -> tuple[np.ndarray, np.ndarray,
                                                                             dict[str, np.ndarray], dict[float, list]]:
    """A seeded sample of pypi-summaries: ``n_docs`` documents and ``n_queries`` held-out rows,
    encoded with MiniLM or with the BM25 random projection (``vectors``)."""
    with gzip.open(SHARED / "pypi-summaries" / "pypi-summaries.tsv.gz", "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in handle]
    name, month, summary = (header.index(c) for c in ("name", "month", "summary"))
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(rows), n_docs + n_queries, replace=False)
    doc_rows, query_rows = [rows[i] for i in picked[:n_docs]], [rows[i] for i in picked[n_docs:]]
    months = np.array([float(r[month][:4]) * 12 + float(r[month][5:7]) - 1 if r[month] else np.nan
                       for r in doc_rows])
    corpus = Corpus([r[name] for r in doc_rows], [r[summary] for r in doc_rows], attributes={"month": months})
    queries = Queries([f"q-{r[name]}" for r in query_rows], [r[summary] for r in query_rows])
    docs, found = encode(corpus, queries) if vectors == "minilm" else bm25_projection(corpus, queries, 256, seed)
    return docs, found, {"month": months}, month_filters(months, n_queries, rng)


# -- strategies -----------------------------------------------------------------------------


Variants = list[tuple[str, dict[str, Any]]]


def strategies(metric: str, faiss_available: bool, acorn_ef: list[int],
               exact_below: int) -> list[tuple[str, Callable[[], Any], Variants]]:
    """(label, factory of an unbuilt index, [(label suffix, extra search arguments)]): each index
    is built once and searched with every variant."""
    create = embedlab.create
    hnsw = {"factory": "HNSW32", "metric": metric, "efSearch": 64}
    plain: Variants = [("", {})]
    rows: list[tuple[str, Callable[[], Any], Variants]] = [
        ("prefilter", lambda: create("index", "prefilter", metric=metric), plain),
        ("postfilter exact", lambda: create("index", "postfilter", index_params={"metric": metric}), plain),
    ]
    if faiss_available:
        rows += [
            ("postfilter HNSW32", lambda: create("index", "postfilter", index="faiss", index_params=hnsw), plain),
            ("postfilter HNSW32 k'<=100", lambda: create("index", "postfilter", index="faiss", index_params=hnsw,
                                                         max_k=100), plain),
            ("faiss HNSW32 + IDSelector", lambda: create("index", "faiss", **hnsw), plain),
        ]
    for gamma, m_beta in ((6, 32), (1, 64)):
        variants: Variants = [(f" ef={ef}", {"ef_search": ef, "exact_below": 0}) for ef in acorn_ef]
        if gamma > 1:
            variants.append((f" ef=64 exact<={exact_below}", {"ef_search": 64, "exact_below": exact_below}))
        rows.append((f"acorn-{gamma} M=32 Mb={m_beta}", lambda g=gamma, b=m_beta: create(
            "index", "acorn", metric=metric, M=32, gamma=g, M_beta=b), variants))
    return rows


def timed(search: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    result = search()  # warm-up (numba compilation, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = search()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def recall(found: np.ndarray, truth: Any, docs: np.ndarray, queries: np.ndarray) -> float:
    """Mean over queries of the fraction of the true top-k matched, a returned document counting
    when its exact score reaches the k-th true score (ann-benchmarks' rule: duplicate texts and
    empty BM25 queries make many exact ties). Queries whose filter passes nothing are skipped."""
    values = []
    for row, (got, true_ids, true_scores) in enumerate(zip(found, truth.indices, truth.scores)):
        n_true = int((true_ids >= 0).sum())
        if n_true:
            scores = docs[got[got >= 0]] @ queries[row]
            values.append(min(1.0, float((scores >= true_scores[n_true - 1] - 1e-5).sum()) / n_true))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("python-stdlib", "pypi"), default="python-stdlib")
    parser.add_argument("--docs", type=int, default=100_000, help="pypi: documents sampled")
    parser.add_argument("--queries", type=int, default=500, help="pypi: held-out rows used as queries")
    parser.add_argument("--vectors", choices=("bm25-rp", "minilm"), default="bm25-rp",
                        help="pypi: 256-d random projection of BM25 (default) or MiniLM (slow on CPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--acorn-ef", type=int, nargs="+", default=[16, 64, 256])
    parser.add_argument("--exact-below", type=int, default=1000,
                        help="the ACORN variant with its exact fallback answers filters passing at most this many "
                             "documents exactly (the other ACORN rows search the graph only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write a recall-vs-QPS plot per selectivity here")
    args = parser.parse_args()
    common.report_load()

    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    registered = embedlab.registry().names("index")
    if "faiss" in registered:
        import faiss

        faiss.omp_set_num_threads(args.threads)
    if args.dataset == "pypi":
        docs, queries, attributes, filters = load_pypi(args.docs, args.queries, args.seed, args.vectors)
    else:
        docs, queries, attributes, filters = load_stdlib(args.seed)
    n_docs = docs.shape[0]
    vectors = args.vectors if args.dataset == "pypi" else "minilm"
    print(f"{args.dataset}: {n_docs} documents x {docs.shape[1]} ({vectors}), {queries.shape[0]} queries with "
          f"per-query filters, k={K}, {args.threads} threads, median of {args.repeats} timed searches")

    rows = []
    with threadpool_limits(limits=args.threads):
        truth_index = ExactIndex(metric="ip")
        truth_index.build(docs, attributes)
        truths, exact_qps, selectivity = {}, {}, {}
        for target, spec in filters.items():
            mask = resolve_filter(spec, attributes, n_docs, queries.shape[0])
            selectivity[target] = float(mask.mean())
            seconds, truths[target] = timed(lambda s=spec: truth_index.search(queries, K, filter=s), args.repeats)
            exact_qps[target] = queries.shape[0] / seconds
        for label, factory, variants in tqdm(strategies("ip", "faiss" in registered, args.acorn_ef,
                                                        args.exact_below), desc="strategies", leave=False):
            index = factory()
            start = time.perf_counter()
            index.build(docs, attributes)
            build_s = time.perf_counter() - start
            for (suffix, extra), (target, spec) in itertools.product(variants, filters.items()):
                search = functools.partial(index.search, queries, K, filter=spec, **extra)
                seconds, result = timed(search, args.repeats)
                qps = queries.shape[0] / seconds
                rows.append({"strategy": label + suffix, "target": target, "qps": qps,
                             "recall": recall(result.indices, truths[target], docs, queries),
                             "vs_exact": qps / exact_qps[target], "build_s": build_s,
                             "mib": index.memory_bytes / 2**20,
                             "depth": float(np.mean(index.last_depths)) if hasattr(index, "last_depths") else None})

    for target in TARGETS:
        print(f"\nselectivity {target:.1%} (measured mean {selectivity[target]:.2%}); core exact index with the "
              f"filter: {exact_qps[target]:.0f} QPS")
        print("| strategy | recall@10 | QPS | QPS / exact | build s | MiB | mean k' |")
        print("|---|---|---|---|---|---|---|")
        for row in (r for r in rows if r["target"] == target):
            depth = "" if row["depth"] is None else f"{row['depth']:.0f}"
            print(f"| {row['strategy']} | {row['recall']:.3f} | {row['qps']:.0f} | {row['vs_exact']:.2f} | "
                  f"{row['build_s']:.1f} | {row['mib']:.1f} | {depth} |")
    if args.plot:
        plot(rows, selectivity, args.plot, args.dataset)


def plot(rows: list[dict[str, Any]], selectivity: dict[float, float], path: Path, dataset: str) -> None:
    """Recall@10 against QPS, one panel per selectivity, ACORN's ef sweep as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TARGETS), figsize=(5 * len(TARGETS), 4.2), sharey=True)
    for ax, target in zip(axes, TARGETS):
        chosen = [r for r in rows if r["target"] == target]
        families: dict[str, list[dict[str, Any]]] = {}
        for row in chosen:
            family = row["strategy"].split(" ef=")[0] + (" + exact fallback" if "exact<=" in row["strategy"] else "")
            families.setdefault(family, []).append(row)
        for family, members in families.items():
            members.sort(key=lambda m: m["qps"])
            ax.plot([m["qps"] for m in members], [m["recall"] for m in members],
                    marker="o", linestyle="-" if len(members) > 1 else "none", label=family)
        ax.set_xscale("log")
        ax.set_title(f"{dataset}: selectivity {selectivity[target]:.2%}")
        ax.set_xlabel("queries per second (log)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"recall@{K} vs exact filtered search")
    axes[-1].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
