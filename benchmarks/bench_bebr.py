"""BEBR (recurrent binarisation) on SciFact with MiniLM: quality at equal bytes against sign bits,
FAISS binary and FAISS PQ for both training objectives; backward-compatible training across an
embedding-model upgrade; and the compiled SDC scan against FAISS binary Hamming.

    python benchmarks/bench_bebr.py --parts quality --plot docs/benchmarks/bebr.png
    python benchmarks/bench_bebr.py --parts quality --dataset python-stdlib
    python benchmarks/bench_bebr.py --parts quality --objectives nce --lrs 1e-4 3e-4 1e-3
    python benchmarks/bench_bebr.py --parts compat
    python benchmarks/bench_bebr.py --parts speed --threads 1 2 --tile 1 20

Embeddings: all-MiniLM-L6-v2 (``common.encoder``: mean pooling, max_length 256, normalised,
document = title + " " + text, ONNX backend) through the shared ``EmbeddingCache``. Exact float
inner-product search gives the reference top-10 and nDCG@10.

``quality``: for each code size B bytes the script fits and searches, in this process with the
same thread count: ``sign`` bits (core ExactIndex Hamming; FAISS ``IndexBinaryFlat``, ``ITQ,LSH``
at B = d/8), FAISS ``IndexLSH`` (rotation, trained thresholds) and ``IndexPQ`` (B x 8 bits, ADC),
and ``bebr`` with 8B / d bits per dimension for both training objectives (``nce``: the paper's
embedding-to-embedding contrastive loss; ``similarity``: ours), scored SDC and ADC. BEBR trains on
the documents alone; its learning rate is chosen per objective at ``--select-budget`` bytes from
``--lrs`` by R@10 against exact search on the dataset's **train** queries (never the test queries),
and that rate is used at every size. nDCG@10 is also given on the test split's unseen subset
(queries none of whose relevant documents is relevant to a training query; all of python-stdlib's).

``compat`` (backward-compatible training, the paper's embedding upgrade without re-indexing):
the "old" model is BM25 randomly projected to 384 dimensions (``--old bm25``: a large, lexical to
neural change) or MiniLM with [CLS] pooling (``--old cls``: the same network, another pooling, read
from the token vectors bench_muvera.py cached), the "new" one MiniLM with mean pooling. An old
binariser indexes the old document embeddings; new queries are then scored against those old codes
by a new binariser trained independently, or trained with ``compatible_with`` (the old binariser's
codes of the same documents). nDCG@10 on the test split, at ``--compat-budget`` bytes.

``speed``: the same BEBR codes (1-bit and multi-bit) searched for the top 10 by our compiled
numba scans (SDC by popcounts, ADC by tables, through the core ExactIndex) and by FAISS
``IndexBinaryFlat`` (Hamming over all code bytes), corpus tiled ``--tile`` times, at each
``--threads``; rounds alternate the two, and the ratio is the median of the per-round ratios
(ours / FAISS time). The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import functools
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
from embedlab import BinaryCodes, SearchResult
from embedlab.cache import EmbeddingCache
from embedlab.index import ExactIndex
from embedlab.index.topk import TopK

K = 10


@attrs.define
class Row:
    budget: int
    method: str
    recall: float
    ndcg: float
    unseen: float
    fit_s: float
    latency_ms: float


def encode(split: str, dataset: str = "scifact") -> common.EncodedSplit:
    """The dataset's documents and the split's queries (the benchmarks' MiniLM), through the shared cache."""
    return common.encode_split(common.load(dataset), split)


def overlap(truth: np.ndarray, found: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(truth, found)]))


def exact_top(queries: np.ndarray, docs: np.ndarray) -> np.ndarray:
    return np.argsort(-(queries @ docs.T), axis=1, kind="stable")[:, :K]


def search(compressor: BEBRCompressor, docs: np.ndarray, queries: np.ndarray) -> SearchResult:
    """Top 10 through the core ExactIndex holding the compressor's codes of ``docs``."""
    index = ExactIndex(metric="ip")
    index.use_compressor(compressor)
    index.build(docs)
    return index.search(queries, K)


def search_codes(score: Callable[[np.ndarray, np.ndarray], np.ndarray], codes: np.ndarray, queries: np.ndarray,
                 block: int = 8192) -> SearchResult:
    """Top 10 of given codes: ``score(queries, code block)`` over blocks of ``block`` codes into the
    core's TopK, what ExactIndex does with a compressor (here the codes may come from another
    binariser, and the queries may be codes already)."""
    top = TopK(len(queries), K)
    for start in range(0, len(codes), block):
        stop = min(start + block, len(codes))
        top.push(score(queries, codes[start:stop]), np.arange(start, stop))
    return SearchResult(top.scores, top.positions)


def with_scoring(compressor: BEBRCompressor, scoring: str) -> BEBRCompressor:
    """The same fitted network scored another way (SDC and ADC share one fit)."""
    other = BEBRCompressor(attrs.evolve(compressor.config, scoring=scoring))
    other._fitted = compressor._fitted
    return other


class Bench:
    """Scores every method against exact search on the same vectors, queries and qrels."""

    def __init__(self, test: common.EncodedSplit, repeats: int, unseen: object) -> None:
        self.test, self.docs, self.queries = test, test.docs, test.queries
        self.repeats, self.unseen = repeats, unseen
        exact = ExactIndex(metric="ip")
        exact.build(self.docs)
        seconds, result = common.best_time(lambda: exact.search(self.queries, K), repeats)
        self.truth = result.indices
        self.rows = [self.row(self.docs.shape[1] * 4, "float32 exact (core ExactIndex)", 0.0, seconds, result)]

    def row(self, budget: int, method: str, fit_s: float, seconds: float, result: SearchResult) -> Row:
        unseen = float(np.mean(list(self.test.per_query(result, qrels=self.unseen).values())))
        return Row(budget, method, overlap(self.truth, result.indices), self.test.ndcg(result), unseen, fit_s,
                   1000 * seconds / len(self.queries))

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

        def run() -> SearchResult:
            distances, labels = index.search(prepare(self.queries), K)
            return SearchResult(distances if similarity else -distances.astype(np.float32), labels)

        seconds, result = common.best_time(run, self.repeats)
        self.rows.append(self.row(budget, method, fit, seconds, result))

    def sign(self, budget: int) -> None:
        index = ExactIndex()
        index.build(BinaryCodes.from_signs(self.docs))
        seconds, result = common.best_time(lambda: index.search(BinaryCodes.from_signs(self.queries), K),
                                           self.repeats)
        self.rows.append(self.row(budget, "sign bits, Hamming (core ExactIndex)", 0.0, seconds, result))

    def bebr(self, budget: int, compressor: BEBRCompressor, fit: float, label: str) -> None:
        for scoring in ("sdc", "adc"):
            scorer = with_scoring(compressor, scoring)
            seconds, result = common.best_time(lambda s=scorer: search(s, self.docs, self.queries), self.repeats)
            self.rows.append(self.row(budget, f"{label} {scoring.upper()} (core ExactIndex)", fit, seconds, result))


def fit_bebr(docs: np.ndarray, budget: int, threads: int, **params: object) -> tuple[BEBRCompressor, float]:
    dim = docs.shape[1]
    compressor = BEBRCompressor(bits_per_dim=8 * budget // dim, code_dim=dim, num_threads=threads, **params)
    start = time.perf_counter()
    compressor.fit(docs)
    return compressor, time.perf_counter() - start


def choose_lr(test: common.EncodedSplit, train: common.EncodedSplit, args: argparse.Namespace, objective: str,
              threads: int) -> float:
    """The learning rate with the best SDC R@10 against exact search on the train queries."""
    truth = exact_top(train.queries, train.docs)
    scores = {}
    for lr in args.lrs:
        compressor, _ = fit_bebr(test.docs, args.select_budget, threads, objective=objective, lr=lr, **args.params)
        scores[lr] = overlap(truth, search(compressor, test.docs, train.queries).indices)
    chosen = max(scores, key=lambda lr: (scores[lr], -lr))
    print(f"  {objective}: R@10 vs exact on {len(train.queries)} train queries at {args.select_budget} B by lr: "
          + ", ".join(f"{lr:g}: {v:.3f}" for lr, v in scores.items()) + f" -> lr {chosen:g}", flush=True)
    return chosen


def quality(args: argparse.Namespace, threads: int) -> list[Row]:
    test, train = encode("test", args.dataset), encode("train", args.dataset)
    unseen = test.unseen_qrels(train)
    bench = Bench(test, args.repeats, unseen)
    docs = test.docs
    dim = docs.shape[1]
    lrs = {objective: choose_lr(test, train, args, objective, threads) for objective in args.objectives}
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
        for objective in args.objectives:
            compressor, fit = fit_bebr(docs, budget, threads, objective=objective, lr=lrs[objective], **args.params)
            name = "paper's nce" if objective == "nce" else "ours, similarity"
            bench.bebr(budget, compressor, fit, f"bebr {8 * budget // dim}x{dim} {name}, lr {lrs[objective]:g}")
    print(f"\n{args.dataset} test: {len(test.queries)} queries ({len(unseen)} unseen: no relevant document shared "
          f"with a training query), {len(docs)} documents, all-MiniLM-L6-v2 {dim}-d; "
          f"{threads} thread(s); latency = best of {args.repeats} batched searches (load average "
          f"{common.load_text()})")
    print(table(bench.rows))
    return bench.rows


def cls_vectors(dataset: embedlab.Dataset, split: str) -> tuple[np.ndarray, np.ndarray]:
    """MiniLM with [CLS] pooling: the first of each text's token vectors (already L2-normalised) from
    the ``minilm-tokens`` entries bench_muvera.py wrote to the shared cache (never encoded here)."""
    encoder = embedlab.create("encoder", "minilm-tokens")
    cache = EmbeddingCache()

    def missing() -> None:
        raise SystemExit("--old cls needs the SciFact minilm-tokens vectors in the embedding cache "
                         "(python benchmarks/bench_muvera.py writes them; ~30 min of encoding)")

    out = []
    for role, content_hash in (("documents", dataset.corpus.content_hash),
                               ("queries", dataset.split(split).queries.content_hash)):
        tokens = cache.get_or_compute(cache.key(encoder, role, content_hash), missing).embeddings
        out.append(np.ascontiguousarray(tokens.vectors[tokens.offsets[:-1]], dtype=np.float32))
    return out[0], out[1]


def compat(args: argparse.Namespace, threads: int, old_model: str) -> None:
    """The old model (``bm25``: BM25 vectors randomly projected to MiniLM's 384 dimensions; ``cls``:
    MiniLM with [CLS] instead of mean pooling) indexes; the new model (MiniLM, mean pooling) queries,
    with and without backward-compatible training."""
    new = encode("test")
    dataset = common.load("scifact")
    if old_model == "cls":
        old_docs, old_queries = cls_vectors(dataset, "test")
        label = "MiniLM [CLS] pooling"
    else:
        old_docs, old_queries = common.bm25_projection(dataset.corpus.documents(), new.query_texts,
                                                       new.docs.shape[1], seed=0)
        label = "BM25 projection"
    old = attrs.evolve(new, docs=old_docs, queries=old_queries)
    budget, dim = args.compat_budget, new.docs.shape[1]
    params = {"bits_per_dim": 8 * budget // dim, "code_dim": dim, "num_threads": threads, "objective": "nce",
              **args.params}
    old_binariser = BEBRCompressor(**params).fit(old.docs)
    old_index = old_binariser.encode(old.docs)
    new_binariser = BEBRCompressor(**params).fit(new.docs)
    compatible = BEBRCompressor(**params).fit(new.docs, compatible_with=old_binariser, old_vectors=old.docs)
    exact_new = exact_top(new.queries, new.docs)
    rows = [(f"old float ({label}), exact", None, old, None),
            ("new float (MiniLM), exact", None, new, None),
            ("old queries -> old codes (old binariser)", old_binariser, old, old_index),
            ("new queries -> new codes (new binariser)", new_binariser, new, new_binariser.encode(new.docs)),
            ("new queries -> old codes, independent new binariser", new_binariser, new, old_index),
            ("new queries -> old codes, backward-compatible new binariser", compatible, new, old_index),
            ("new queries -> new codes, backward-compatible new binariser", compatible, new,
             compatible.encode(new.docs))]
    print(f"\nbackward-compatible training, old model {label} -> new model MiniLM (mean pooling), SciFact test "
          f"({len(new.queries)} queries), {budget} B codes ({params['bits_per_dim']} bits x {dim}, objective nce), "
          "SDC")
    print("| query -> index | nDCG@10 | R@10 vs exact new-model search |\n|---|---|---|")
    for label, binariser, split, codes in rows:
        if binariser is None:
            result = SearchResult(*reversed(_top(split.queries @ split.docs.T)))
        else:
            result = search_codes(binariser.score, codes, split.queries)
        print(f"| {label} | {new.ndcg(result):.4f} | {overlap(exact_new, result.indices):.3f} |", flush=True)


def _top(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :K]
    return ids, np.take_along_axis(scores, ids, axis=1)


def speed(args: argparse.Namespace) -> None:
    """Our compiled scans vs FAISS IndexBinaryFlat on the same code bytes, paired rounds."""
    test = encode("test")
    docs, queries = test.docs, test.queries
    print(f"\nspeed: SciFact {len(docs)} documents tiled x{args.tile}, {len(queries)} queries, top {K}; rounds "
          f"{args.rounds}; ratio = median over rounds of ours / FAISS time")
    print("| bytes | codes | threads | scan | ours ms/query | FAISS IndexBinaryFlat ms/query | ours / FAISS | "
          "load |\n|---|---|---|---|---|---|---|---|")
    for budget in args.speed_budgets:
        compressor, _ = fit_bebr(docs, budget, 1, objective="nce", **args.params)
        codes = compressor.encode(docs)
        query_codes = compressor.encode(queries)
        for tile in args.tile:
            tiled = np.ascontiguousarray(np.tile(codes, (tile, 1)))
            reference = faiss.IndexBinaryFlat(8 * codes.shape[1])
            reference.add(tiled)
            for threads in args.threads:
                faiss.omp_set_num_threads(threads)
                for scoring in ("sdc", "adc"):
                    scorer = BEBRCompressor(attrs.evolve(compressor.config, scoring=scoring, num_threads=threads))
                    scorer._fitted = compressor._fitted
                    # SDC scans the binarised queries (binarising them is timed apart); ADC the floats
                    score, inputs = (scorer.score_codes, query_codes) if scoring == "sdc" else (scorer.score, queries)
                    run = functools.partial(search_codes, score, tiled, inputs)
                    run()  # numba compilation and warm-up
                    reference.search(query_codes, K)
                    ours, theirs = [], []
                    with threadpool_limits(limits=threads):
                        for _ in range(args.rounds):
                            start = time.perf_counter()
                            run()
                            ours.append(time.perf_counter() - start)
                            start = time.perf_counter()
                            reference.search(query_codes, K)
                            theirs.append(time.perf_counter() - start)
                    ratio = float(np.median(np.array(ours) / np.array(theirs)))
                    ms_ours, ms_faiss = (1000 * float(np.median(t)) / len(queries) for t in (ours, theirs))
                    print(f"| {budget} | {len(tiled):,} | {threads} | {scoring.upper()} | {ms_ours:.3f} | "
                          f"{ms_faiss:.3f} | {ratio:.2f} | {common.load_text()} |", flush=True)
        seconds, _ = common.best_time(lambda c=compressor: c.encode(queries), args.rounds)
        print(f"| {budget} | | 1 | binarising the queries (torch, once per search) | "
              f"{1000 * seconds / len(queries):.3f} | | | {common.load_text()} |")


def table(rows: list[Row]) -> str:
    lines = ["| bytes | method | R@10 vs exact | nDCG@10 | nDCG@10 unseen | fit s | fit / PQ | ms/query | "
             "latency / PQ |", "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        pq = next((r for r in rows if r.budget == row.budget and r.method.startswith("faiss PQ")), None)
        fit_ratio = f"{row.fit_s / pq.fit_s:.2f}" if pq and row.fit_s and pq is not row else ""
        lat_ratio = f"{row.latency_ms / pq.latency_ms:.2f}" if pq and pq is not row else ""
        lines.append(f"| {row.budget} | {row.method} | {row.recall:.3f} | {row.ndcg:.4f} | {row.unseen:.4f} | "
                     f"{row.fit_s:.2f} | "
                     f"{fit_ratio} | {row.latency_ms:.3f} | {lat_ratio} |")
    return "\n".join(lines)


def plot(rows: list[Row], path: Path, dataset: str = "scifact") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = {"bebr nce SDC": ("bebr", "nce", "SDC"), "bebr nce ADC": ("bebr", "nce", "ADC"),
                "bebr similarity SDC": ("bebr", "similarity", "SDC"), "faiss PQ": ("faiss PQ", "", ""),
                "faiss IndexLSH": ("faiss LSH", "", "")}
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, (prefix, objective, scoring) in families.items():
        points = sorted((r.budget, r.recall) for r in rows
                        if r.method.startswith(prefix) and objective in r.method and scoring in r.method)
        if points:
            ax.plot(*zip(*points), marker="o", label=label)
    for r in rows:
        if r.method.startswith(("sign", "faiss ITQ")):
            ax.scatter([r.budget], [r.recall], marker="x", label=r.method.split(",")[0])
    ax.set_xscale("log", base=2)
    budgets = sorted({r.budget for r in rows[1:]})
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.set_xlabel("bytes per document")
    ax.set_ylabel("R@10 vs exact float search")
    ax.set_title(f"{dataset}, all-MiniLM-L6-v2 (384-d)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=("quality", "compat", "speed"),
                        default=["quality", "compat", "speed"])
    parser.add_argument("--dataset", default="scifact", choices=("scifact", "python-stdlib"),
                        help="the quality part's data (compat and speed use SciFact)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1],
                        help="thread counts (quality and compat use the first)")
    parser.add_argument("--budgets", type=int, nargs="+", default=[48, 96, 192])
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2])
    parser.add_argument("--objectives", nargs="+", choices=("nce", "similarity"), default=["nce", "similarity"],
                        help="bebr training objectives of the quality part (each gets its own lr from --lrs)")
    parser.add_argument("--select-budget", type=int, default=96, help="code size at which the lr is chosen")
    parser.add_argument("--compat-budget", type=int, default=96)
    parser.add_argument("--old", nargs="+", choices=("bm25", "cls"), default=["bm25", "cls"],
                        help="old model(s) of the compat part: BM25 projection, MiniLM [CLS] pooling")
    parser.add_argument("--speed-budgets", type=int, nargs="+", default=[48, 96])
    parser.add_argument("--tile", type=int, nargs="+", default=[1, 20], help="corpus copies for the speed part")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="bebr epochs (default: the compressor's)")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args()
    common.report_load()
    args.params = {} if args.epochs is None else {"epochs": args.epochs}
    threads = args.threads[0]
    faiss.omp_set_num_threads(threads)
    if "quality" in args.parts:
        with threadpool_limits(limits=threads):
            rows = quality(args, threads)
        if args.plot is not None:
            plot(rows, args.plot, args.dataset)
            print(f"plot: {args.plot}")
    if "compat" in args.parts:
        with threadpool_limits(limits=threads):
            for old_model in args.old:
                compat(args, threads, old_model)
    if "speed" in args.parts:
        speed(args)


if __name__ == "__main__":
    main()
