"""Filtered nearest-neighbour search under the protocol of the FANNS benchmark (Iff, Brugger,
Chrapek, Besta, Hoefler, "Benchmarking Filtered Approximate Nearest Neighbor Search Algorithms on
Transformer-based Embedding Vectors", arXiv 2507.21989): every method we can run here, every one
swept over its search knob, across filter types and a selectivity sweep, compared at equal recall.

    python benchmarks/bench_filtered.py --plot docs/benchmarks/filtered-stdlib.png     # python-stdlib, MiniLM
    python benchmarks/bench_filtered.py --dataset pypi --docs 100000 --queries 500

Methods (the paper's taxonomy): pre-filtering (``prefilter``: exact search over the passing
documents); post-filtering (``postfilter`` over the core exact index, and over FAISS HNSW32 at each
efSearch, ``k'`` growing until ``k`` pass); in-filtering: FAISS HNSW32 and IVF with an
``IDSelector`` (efSearch / nprobe swept), ACORN-gamma and ACORN-1 (``acorn``, ef swept, graph
only), and ACORN-gamma with its exact fallback for filters passing at most ``--exact-below``
documents, reported as its own method (a hybrid with pre-filtering). Of the paper's other methods
(SeRF, Filtered-DiskANN, UNG, CAPS, NHQ...) none has a maintained wheel that installs here with
filtered search (diskannpy 0.7's filtered index needs label files and a build this harness does
not drive); they are not run.

Filter types (per query, drawn from a seed independently of the query text), on real attributes:
python-stdlib (3,767 documents, 360 test queries): **EM** ``{"package": P}`` (exact match of one
package), **EM-any** ``{"package": {"in": [...]}}`` (any of a set of packages; the benchmark's EMIS
matches one value inside a set-valued attribute, which python-stdlib has not), **R** ``{"length":
{"gte": a, "lt": b}}`` (a range of source lengths); pypi (a seeded sample of ``--docs`` package
summaries, ``--queries`` held-out ones): **R** windows of the release month. Each type is drawn at
each ``--selectivities`` value it can reach (EM only where single packages of that size exist).

Measured per (method, knob, filter type, selectivity): recall@k against the core exact index under
the same filter (a document counts when its exact score reaches the k-th true score: duplicates
tie), the mean number of results returned (a method may return fewer than ``k``), queries per
second (median of ``--repeats`` batched searches after a warm-up, ``--threads`` threads), build
time and memory. The summary gives each method's best QPS among its knob values reaching recall
0.9 and 0.95 (equal recall), and its ratio to pre-filtering's.
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
import faiss
import numpy as np
from tqdm import tqdm

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.dataset import Corpus, Queries
from embedlab.filters import resolve_filter
from embedlab.index import ExactIndex

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


# -- data -----------------------------------------------------------------------------------


def encode(corpus: Corpus, queries: Queries) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM document and query vectors through the shared embedding cache (Pipeline's keys)."""
    encoder, cache = common.encoder("minilm"), EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", corpus.content_hash),
                                lambda: encoder.encode_documents(corpus.documents()))
    found = cache.get_or_compute(cache.key(encoder, "queries", queries.content_hash),
                                 lambda: encoder.encode_queries(list(queries.texts)))
    return np.asarray(docs.embeddings, np.float32), np.asarray(found.embeddings, np.float32)


FilterSet = dict[tuple[str, float], list[dict[str, Any]]]


def stdlib_filters(attributes: dict[str, np.ndarray], n_queries: int, targets: list[float],
                   rng: np.random.Generator) -> FilterSet:
    """Per-query filters of each type and target selectivity on python-stdlib's real attributes."""
    packages, counts = np.unique(attributes["package"], return_counts=True)
    n = attributes["package"].size
    lengths = np.sort(attributes["length"])
    out: FilterSet = {}

    def package_set(target: float) -> dict[str, Any]:
        minor = np.flatnonzero(counts < target * n)
        while True:
            chosen, total = [], 0
            for i in rng.permutation(minor):
                chosen.append(str(packages[i]))
                total += counts[i]
                if total >= 0.8 * target * n:
                    break
            if total <= 1.2 * target * n:
                return {"package": {"in": chosen}}

    def length_window(target: float) -> dict[str, Any]:
        width = max(1, int(target * n))
        start = int(rng.integers(0, n - width))
        return {"length": {"gte": int(lengths[start]), "lt": int(lengths[start + width])}}

    for target in targets:
        single = packages[(counts >= 0.6 * target * n) & (counts <= 1.4 * target * n)]
        if single.size and target <= 0.05:
            out["EM", target] = [{"package": str(rng.choice(single))} for _ in range(n_queries)]
        if target <= 0.2 and (counts < target * n).sum() >= 2:
            out["EM-any", target] = [package_set(target) for _ in range(n_queries)]
        out["R", target] = [length_window(target) for _ in range(n_queries)]
    return out


def month_filters(months: np.ndarray, n_queries: int, targets: list[float], rng: np.random.Generator) -> FilterSet:
    """Per-query release-month windows (range filters) holding about each target fraction."""
    ordered = np.sort(months[~np.isnan(months)])
    n = months.size

    def window(target: float) -> dict[str, Any]:
        while True:
            start = int(rng.integers(0, ordered.size - int(target * n)))
            low, high = ordered[start], ordered[start + int(target * n)]
            passing = int(((months >= low) & (months < high)).sum())
            if 0.6 * target * n <= passing <= 1.6 * target * n:
                return {"month": {"gte": float(low), "lt": float(high)}}

    return {("R", t): [window(t) for _ in range(n_queries)] for t in targets}


def load_stdlib(seed: int, targets: list[float]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], FilterSet]:
    dataset = embedlab.load_dataset("python-stdlib")
    queries = dataset.split("test").queries
    docs, found = encode(dataset.corpus, queries)
    attributes = dict(dataset.corpus.attributes)
    return docs, found, attributes, stdlib_filters(attributes, len(queries), targets, np.random.default_rng(seed))


def load_pypi(n_docs: int, n_queries: int, seed: int, vectors: str,
              targets: list[float]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], FilterSet]:
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
    if vectors == "minilm":
        docs, found = encode(corpus, queries)
    else:
        docs, found = common.bm25_projection(corpus.documents(), list(queries.texts), 256, seed)
    return docs, found, {"month": months}, month_filters(months, n_queries, targets, rng)


# -- strategies -----------------------------------------------------------------------------


Variants = list[tuple[str, dict[str, Any], Callable[[Any], None]]]


def _no_setup(index: Any) -> None:
    return None


def _faiss_knob(name: str, value: int) -> Callable[[Any], None]:
    """Set an efSearch / nprobe on the built FAISS index (the IDSelector search keeps it)."""
    def setup(index: Any) -> None:
        raw = faiss.downcast_index(index.faiss_index)
        if name == "efSearch":
            raw.hnsw.efSearch = value
        else:
            raw.nprobe = value
    return setup


def strategies(metric: str, faiss_available: bool, args: argparse.Namespace,
               n_docs: int) -> list[tuple[str, str, Callable[[], Any], Variants]]:
    """(method, label, factory of an unbuilt index, [(knob label, extra search arguments, setup)]):
    each index is built once and searched with every variant."""
    create = embedlab.create
    plain: Variants = [("", {}, _no_setup)]
    rows: list[tuple[str, str, Callable[[], Any], Variants]] = [
        ("prefilter", "prefilter", lambda: create("index", "prefilter", metric=metric), plain),
        ("postfilter exact", "postfilter exact", lambda: create("index", "postfilter", index_params={"metric": metric}),
         plain),
    ]
    if faiss_available:
        for ef in args.faiss_ef:
            hnsw = {"factory": "HNSW32", "metric": metric, "efSearch": ef}
            rows.append(("postfilter HNSW32", f"postfilter HNSW32 efSearch={ef}",
                         lambda h=hnsw: create("index", "postfilter", index="faiss", index_params=h), plain))
        rows.append(("faiss HNSW32 + IDSelector", "faiss HNSW32 + IDSelector",
                     lambda: create("index", "faiss", factory="HNSW32", metric=metric),
                     [(f" efSearch={ef}", {}, _faiss_knob("efSearch", ef)) for ef in args.faiss_ef]))
        nlist = max(16, int(4 * n_docs ** 0.5) // 16 * 16)
        rows.append(("faiss IVF + IDSelector", f"faiss IVF{nlist},Flat + IDSelector",
                     lambda: create("index", "faiss", factory=f"IVF{nlist},Flat", metric=metric),
                     [(f" nprobe={p}", {}, _faiss_knob("nprobe", p)) for p in args.nprobe if p <= nlist]))
    acorn = {}
    for gamma, m_beta in ((args.gamma, 32), (1, 64)):
        variants: Variants = [(f" ef={ef}", {"ef_search": ef, "exact_below": 0}, _no_setup) for ef in args.acorn_ef]
        acorn[gamma] = functools.cache(lambda g=gamma, b=m_beta: create(
            "index", "acorn", metric=metric, M=32, gamma=g, M_beta=b))
        rows.append((f"acorn-{gamma}", f"acorn-{gamma} M=32 Mb={m_beta}", acorn[gamma], variants))
    # the same ACORN-gamma graph (built once: the factory is cached), searched with the fallback on
    rows.append((f"acorn-{args.gamma} + exact fallback", f"acorn-{args.gamma} M=32 Mb=32 + exact<={args.exact_below}",
                 acorn[args.gamma],
                 [(f" ef={ef}", {"ef_search": ef, "exact_below": args.exact_below}, _no_setup)
                  for ef in args.acorn_ef]))
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


def summary(rows: list[dict[str, Any]], prefilter_qps: dict, targets: list) -> list[str]:
    """Best QPS per method among its knob values reaching recall 0.9 / 0.95, per filter."""
    lines = ["| filter | selectivity | method | QPS at recall >= 0.9 (knob) | x prefilter | "
             "QPS at recall >= 0.95 (knob) | x prefilter | best recall |", "|---|---|---|---|---|---|---|---|"]
    for key in targets:
        methods = list(dict.fromkeys(r["method"] for r in rows if r["key"] == key))
        for method in methods:
            mine = [r for r in rows if r["key"] == key and r["method"] == method]
            cells = []
            for level in (0.9, 0.95):
                ok = [r for r in mine if r["recall"] >= level]
                best = max(ok, key=lambda r: r["qps"]) if ok else None
                if best is None:
                    cells += ["never", ""]
                else:
                    cells += [f"{best['qps']:.0f} ({best['knob'].strip() or '-'})",
                              f"{best['qps'] / prefilter_qps[key]:.2f}"]
            lines.append(f"| {key[0]} | {key[1]:.1%} (measured {rows[0]['measured'][key]:.2%}) | {method} | "
                         + " | ".join(cells) + f" | {max(r['recall'] for r in mine):.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=("python-stdlib", "pypi"), default="python-stdlib")
    parser.add_argument("--docs", type=int, default=100_000, help="pypi: documents sampled")
    parser.add_argument("--queries", type=int, default=500, help="pypi: held-out rows used as queries")
    parser.add_argument("--vectors", choices=("bm25-rp", "minilm"), default="bm25-rp",
                        help="pypi: 256-d random projection of BM25 (default) or MiniLM (slow on CPU)")
    parser.add_argument("--selectivities", type=float, nargs="+", default=[0.005, 0.01, 0.05, 0.1, 0.5])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--acorn-ef", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--faiss-ef", type=int, nargs="+", default=[16, 64, 256, 1024])
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1, 4, 16, 64, 256])
    parser.add_argument("--gamma", type=int, default=6, help="ACORN-gamma's neighbour expansion")
    parser.add_argument("--exact-below", type=int, default=1000,
                        help="the ACORN-with-fallback method answers filters passing at most this many documents "
                             "exactly (plain ACORN searches the graph only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, help="write a recall-vs-QPS plot per filter and selectivity here")
    args = parser.parse_args()
    common.report_load()

    import numba
    from threadpoolctl import threadpool_limits

    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    registered = embedlab.registry().names("index")
    if "faiss" in registered:
        faiss.omp_set_num_threads(args.threads)
    if args.dataset == "pypi":
        docs, queries, attributes, filters = load_pypi(args.docs, args.queries, args.seed, args.vectors,
                                                       args.selectivities)
    else:
        docs, queries, attributes, filters = load_stdlib(args.seed, args.selectivities)
    n_docs, k = docs.shape[0], args.k
    vectors = args.vectors if args.dataset == "pypi" else "minilm"
    print(f"{args.dataset}: {n_docs} documents x {docs.shape[1]} ({vectors}), {queries.shape[0]} queries with "
          f"per-query filters, k={k}, {args.threads} threads, median of {args.repeats} timed searches")

    rows = []
    with threadpool_limits(limits=args.threads):
        truth_index = ExactIndex(metric="ip")
        truth_index.build(docs, attributes)
        truths, measured, built = {}, {}, []
        for key, spec in filters.items():
            measured[key] = float(resolve_filter(spec, attributes, n_docs, queries.shape[0]).mean())
            truths[key] = truth_index.search(queries, k, filter=spec)
        for method, label, factory, variants in tqdm(strategies("ip", "faiss" in registered, args, n_docs),
                                                     desc="strategies", leave=False):
            index = factory()
            build_s = next((s for other, s in built if other is index), None)  # a cached factory's index
            if build_s is None:
                start = time.perf_counter()
                index.build(docs, attributes)
                build_s = time.perf_counter() - start
                if hasattr(factory, "cache_info"):
                    built.append((index, build_s))
            for (knob, extra, setup), (key, spec) in itertools.product(variants, filters.items()):
                setup(index)
                seconds, result = timed(functools.partial(index.search, queries, k, filter=spec, **extra), args.repeats)
                rows.append({"method": method, "strategy": label + knob, "knob": knob, "key": key,
                             "qps": queries.shape[0] / seconds, "measured": measured,
                             "recall": recall(result.indices, truths[key], docs, queries),
                             "returned": float((result.indices >= 0).sum(axis=1).mean()), "build_s": build_s,
                             "mib": index.memory_bytes / 2**20,
                             "depth": float(np.mean(index.last_depths)) if hasattr(index, "last_depths") else None})
    prefilter_qps = {key: next(r["qps"] for r in rows if r["key"] == key and r["method"] == "prefilter")
                     for key in filters}
    for key in filters:
        print(f"\n{key[0]} filter, selectivity {key[1]:.1%} (measured mean {measured[key]:.2%}, "
              f"{measured[key] * n_docs:.0f} documents); prefilter {prefilter_qps[key]:.0f} QPS")
        print(f"| method, knob | recall@{k} | mean returned | QPS | x prefilter | build s | MiB | mean k' |")
        print("|---|---|---|---|---|---|---|---|")
        for row in (r for r in rows if r["key"] == key):
            depth = "" if row["depth"] is None else f"{row['depth']:.0f}"
            print(f"| {row['strategy']} | {row['recall']:.3f} | {row['returned']:.1f} | {row['qps']:.0f} | "
                  f"{row['qps'] / prefilter_qps[key]:.2f} | {row['build_s']:.1f} | {row['mib']:.1f} | {depth} |")
    print(f"\nequal recall: best QPS of each method's knob sweep (load average {common.load_text()})\n")
    print("\n".join(summary(rows, prefilter_qps, list(filters))))
    if args.plot:
        plot(rows, measured, args.plot, args.dataset)


def plot(rows: list[dict[str, Any]], measured: dict, path: Path, dataset: str) -> None:
    """Recall against QPS, one panel per (filter type, selectivity), each method's sweep a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(measured)
    columns = min(4, len(keys))
    lines = (len(keys) + columns - 1) // columns
    fig, axes = plt.subplots(lines, columns, figsize=(4.5 * columns, 3.8 * lines), sharey=True, squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        for method in dict.fromkeys(r["method"] for r in rows):
            members = sorted((r for r in rows if r["key"] == key and r["method"] == method), key=lambda m: m["qps"])
            ax.plot([m["qps"] for m in members], [m["recall"] for m in members], marker="o", markersize=3,
                    linestyle="-" if len(members) > 1 else "none", label=method)
        ax.set_xscale("log")
        ax.set_title(f"{dataset} {key[0]}: {measured[key]:.2%}", fontsize=9)
        ax.set_xlabel("queries per second (log)")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    axes[0, 0].set_ylabel("recall@k vs exact filtered search")
    axes[0, 0].legend(fontsize=6, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot: {path}")


if __name__ == "__main__":
    main()
