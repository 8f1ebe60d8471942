"""BEBR codes vs sign bits, FAISS binary and FAISS PQ at equal bytes, on SciFact with MiniLM.

    python benchmarks/bench_bebr.py [--threads 1] [--budgets 48 96 192] [--mlp-budget 96]
                                    [--plot docs/benchmarks/bebr.png]

Embeddings: all-MiniLM-L6-v2 (encoder ``minilm``: mean pooling, max_length 256, normalised,
document = title + " " + text) through ``embedlab.cache.EmbeddingCache()``, keyed as
``embedlab.Pipeline`` keys them (computed once, then shared). Exact float inner-product search
gives the reference top-10 and nDCG@10 (0.645, the published MTEB value).

For each code size B bytes (= 8B bits per document) the script fits and searches, in this
process with the same thread count:

* ``sign``: ``embedlab.BinaryCodes.from_signs`` + Hamming in the core ExactIndex (B = d/8 only);
* ``faiss binary``: ``IndexBinaryFlat`` on the same sign bits (B = d/8), ``ITQ,LSH`` (B = d/8)
  and ``IndexLSH`` with a random rotation to 8B bits and trained thresholds (every B);
* ``faiss PQ``: ``IndexPQ`` with B sub-quantisers of 8 bits, inner product (asymmetric);
* ``bebr``: the ``bebr`` compressor with 8B / d bits per dimension (code_dim = d) in the core
  ExactIndex (``use_compressor``), scored SDC (binarised queries) and ADC (same fit); at
  ``--mlp-budget`` also with residual MLP blocks (one hidden layer of 512) instead of linear maps.

Columns: R@10 = overlap of the top-10 with exact float search; nDCG@10 on the test qrels; fit
seconds; query latency = wall time of one batched search of all queries (best of ``--repeats``)
per query, query binarisation included; ratios are ours / FAISS PQ at the same bytes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import attrs
import common
import faiss
import numpy as np
from embedlab_bebr import BEBRCompressor
from threadpoolctl import threadpool_limits

import embedlab
from embedlab import BinaryCodes, Ranking, SearchResult
from embedlab.cache import EmbeddingCache
from embedlab.datasets.beir import load_beir
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "beir"
K = 10


@attrs.define
class Row:
    budget: int
    method: str
    recall: float
    ndcg: float
    fit_s: float
    latency_ms: float


def embeddings() -> tuple[np.ndarray, np.ndarray, list[str], object, list[str]]:
    """SciFact test documents and queries encoded by ``minilm`` (default parameters, so that the
    cache key is the one every pipeline uses), through the shared cache."""
    dataset = load_beir(SCIFACT)
    split = dataset.split("test")
    encoder = embedlab.create("encoder", "minilm")
    cache = EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", dataset.corpus.content_hash),
                                lambda: encoder.encode_documents(dataset.corpus.documents())).embeddings
    queries = cache.get_or_compute(cache.key(encoder, "queries", split.queries.content_hash),
                                   lambda: encoder.encode_queries(list(split.queries.texts))).embeddings
    return docs, queries, list(split.queries.ids), split.qrels, list(dataset.corpus.ids)


def best_time(search: Callable[[], SearchResult], repeats: int) -> tuple[float, SearchResult]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = search()
        times.append(time.perf_counter() - start)
    return min(times), result


class Bench:
    """Scores every method against exact search on the same vectors, queries and qrels."""

    def __init__(self, docs: np.ndarray, queries: np.ndarray, query_ids: list[str], qrels: object,
                 doc_ids: list[str], repeats: int) -> None:
        self.docs, self.queries, self.query_ids, self.qrels, self.doc_ids = docs, queries, query_ids, qrels, doc_ids
        self.repeats = repeats
        exact = ExactIndex(metric="ip")
        exact.build(docs)
        seconds, result = best_time(lambda: exact.search(queries, K), repeats)
        self.truth = result.indices
        self.rows = [self.row(docs.shape[1] * 4, "float32 exact (core ExactIndex)", 0.0, seconds, result)]

    def row(self, budget: int, method: str, fit_s: float, seconds: float, result: SearchResult) -> Row:
        recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(self.truth, result.indices)])
        ranking = Ranking.from_search(self.query_ids, result, self.doc_ids)
        ndcg = evaluate(ranking, self.qrels, ["nDCG@10"]).aggregates["nDCG@10"]
        return Row(budget, method, float(recall), float(ndcg), fit_s, 1000 * seconds / len(self.queries))

    def faiss(self, budget: int, method: str, make: Callable[[], faiss.Index],
              prepare: Callable[[np.ndarray], np.ndarray] = lambda x: x) -> None:
        """Train (timed) and fill a FAISS index; queries go through ``prepare`` inside the timing."""
        index = make()
        fit = 0.0
        if not index.is_trained:
            start = time.perf_counter()
            index.train(prepare(self.docs))
            fit = time.perf_counter() - start
        index.add(prepare(self.docs))
        similarity = index.metric_type == faiss.METRIC_INNER_PRODUCT and not isinstance(index, faiss.IndexBinary)

        def search() -> SearchResult:
            distances, labels = index.search(prepare(self.queries), K)
            return SearchResult(distances if similarity else -distances.astype(np.float32), labels)

        seconds, result = best_time(search, self.repeats)
        self.rows.append(self.row(budget, method, fit, seconds, result))

    def sign(self, budget: int) -> None:
        index = ExactIndex()
        index.build(BinaryCodes.from_signs(self.docs))
        seconds, result = best_time(lambda: index.search(BinaryCodes.from_signs(self.queries), K), self.repeats)
        self.rows.append(self.row(budget, "sign bits, Hamming (core ExactIndex)", 0.0, seconds, result))

    def bebr(self, budget: int, threads: int, **params: object) -> None:
        dim = self.docs.shape[1]
        bits = 8 * budget // dim
        compressor = BEBRCompressor(bits_per_dim=bits, code_dim=dim, num_threads=threads, **params)
        start = time.perf_counter()
        compressor.fit(self.docs)
        fit = time.perf_counter() - start
        for scoring in ("sdc", "adc"):
            scorer = BEBRCompressor(attrs.evolve(compressor.config, scoring=scoring))
            scorer._fitted = compressor._fitted  # the same network: ADC and SDC share one fit
            index = ExactIndex(metric="ip")
            index.use_compressor(scorer)
            index.build(self.docs)
            seconds, result = best_time(lambda index=index: index.search(self.queries, K), self.repeats)
            variant = f", hidden {compressor.config.hidden}" if compressor.config.hidden else ""
            self.rows.append(self.row(budget, f"bebr {bits}x{dim} {scoring.upper()}{variant} (core ExactIndex)",
                                      fit, seconds, result))


def table(rows: list[Row]) -> str:
    lines = ["| bytes | method | R@10 vs exact | nDCG@10 | fit s | fit / PQ | ms/query | latency / PQ |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        pq = next((r for r in rows if r.budget == row.budget and r.method.startswith("faiss PQ")), None)
        fit_ratio = f"{row.fit_s / pq.fit_s:.2f}" if pq and row.fit_s and pq is not row else ""
        lat_ratio = f"{row.latency_ms / pq.latency_ms:.2f}" if pq and pq is not row else ""
        lines.append(f"| {row.budget} | {row.method} | {row.recall:.3f} | {row.ndcg:.4f} | {row.fit_s:.2f} | "
                     f"{fit_ratio} | {row.latency_ms:.3f} | {lat_ratio} |")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = {"bebr SDC": ("bebr", "SDC"), "bebr ADC": ("bebr", "ADC"), "faiss PQ": ("faiss PQ", ""),
                "faiss IndexLSH": ("faiss LSH", "")}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (prefix, scoring) in families.items():
        points = sorted((r.budget, r.recall) for r in rows
                        if r.method.startswith(prefix) and scoring in r.method and "hidden" not in r.method)
        ax.plot(*zip(*points), marker="o", label=label)
    for r in rows:
        if r.method.startswith(("sign", "faiss ITQ")):
            ax.scatter([r.budget], [r.recall], marker="x", label=r.method.split(",")[0])
    ax.set_xscale("log", base=2)
    budgets = sorted({r.budget for r in rows[1:]})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("bytes per document")
    ax.set_ylabel("R@10 vs exact float search")
    ax.set_title("SciFact, all-MiniLM-L6-v2 (384-d)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--budgets", type=int, nargs="+", default=[48, 96, 192])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="bebr epochs (default: the compressor's)")
    parser.add_argument("--mlp-budget", type=int, default=96,
                        help="also fit bebr with one hidden layer of 512 (residual MLP blocks) at this size")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(args.threads)
    params = {} if args.epochs is None else {"epochs": args.epochs}
    with threadpool_limits(limits=args.threads):
        docs, queries, query_ids, qrels, doc_ids = embeddings()
        bench = Bench(docs, queries, query_ids, qrels, doc_ids, args.repeats)
        dim = docs.shape[1]
        signs = lambda x: np.packbits(x > 0, axis=1)  # noqa: E731
        for budget in args.budgets:
            bits = 8 * budget
            if bits == dim:
                bench.sign(budget)
                bench.faiss(budget, "faiss IndexBinaryFlat, sign bits", lambda: faiss.IndexBinaryFlat(dim), signs)
                bench.faiss(budget, "faiss ITQ,LSH", lambda: faiss.index_factory(dim, "ITQ,LSH"))
            bench.faiss(budget, f"faiss LSH {bits} bits (rotation, trained thresholds)",
                        lambda bits=bits: faiss.IndexLSH(dim, bits, True, True))
            bench.faiss(budget, f"faiss PQ{budget}x8 (ADC)",
                        lambda budget=budget: faiss.IndexPQ(dim, budget, 8, faiss.METRIC_INNER_PRODUCT))
            bench.bebr(budget, args.threads, **params)
            if budget == args.mlp_budget:
                bench.bebr(budget, args.threads, **params, hidden=(512,))
    print(f"SciFact test: {len(queries)} queries, {len(docs)} documents, all-MiniLM-L6-v2 {dim}-d; "
          f"{args.threads} thread(s); latency = best of {args.repeats} batched searches")
    print(table(bench.rows))
    if args.plot is not None:
        plot(bench.rows, args.plot)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
