"""BiDR two-tier index: recall@10 against exact search as the candidate count N grows, memory, disk reads.

    python benchmarks/bench_bidr.py                       # SciFact + python-stdlib, m=16 and m=48
    python benchmarks/bench_bidr.py --datasets scifact --m 48 --candidates 10 100 1000
    python benchmarks/bench_bidr.py --datasets pypi-summaries --pypi-docs 20000   # encodes once (minutes)

For each dataset (cached MiniLM embeddings from ``common.encode_split``; for ``pypi-summaries`` a
seeded sample of documents and held-out summaries as queries, no qrels, encoded once into the cache)
and PQ size ``m`` (x 256 centroids): exact top-10 (core ``ExactIndex``) is the truth; rows give recall@10,
nDCG@10, ms/query, in-memory bytes and float bytes read from disk per query for

* ``faiss flat``: FAISS ``IndexFlatIP`` (exact, everything in RAM; the time reference);
* ``faiss PQ``: FAISS ``IndexPQ(m, 8)`` (codes only);
* ``bidr codes only``: the bidr in-memory tier alone (same codes as every ``bidr N=...`` row);
* ``bidr N=...``: codes find N candidates, the memory-mapped float vectors re-score them.

Then each of ``exact`` and ``bidr`` is saved, and a fresh Python process loads it and answers every
query (N = ``--rss-candidates``): the increase of its resident memory, split into anonymous pages
(heap: arrays read into RAM) and file-backed pages (here: touched pages of the memory-mapped vectors),
is printed. A plot of recall@10 against N goes to ``--plot``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs
import common
import faiss
import numpy as np
from embedlab_bidr import BiDRIndex

import embedlab
from embedlab import Corpus, Queries, SearchResult
from embedlab.cache import EmbeddingCache
from embedlab.index import ExactIndex

DEFAULT_N = [10, 20, 50, 100, 200, 300, 500, 1000, 2000]
RSS_FIELDS = ("VmRSS", "RssAnon", "RssFile")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def rss() -> dict[str, int]:
    """Resident memory of this process in bytes, from /proc/self/status."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in RSS_FIELDS:
            values[key] = int(rest.split()[0]) * 1024
    return values


def rss_child(kind: str, path: str, queries_file: str, candidates: int) -> None:
    """Load a saved index in this fresh process, answer every query, print the RSS increase as JSON."""
    queries = np.load(queries_file)
    embedlab.registry()  # import every installed plugin first: loading a saved index looks them up
    before = rss()
    index = BiDRIndex.load(path, verify=False) if kind == "bidr" else ExactIndex.load(path)
    loaded = rss()
    extra = {"candidates": candidates} if kind == "bidr" else {}
    index.search(queries, 10, **extra)
    after = rss()
    print(json.dumps({"load": {k: loaded[k] - before[k] for k in RSS_FIELDS},
                      "search": {k: after[k] - before[k] for k in RSS_FIELDS},
                      "memory_bytes": index.memory_bytes}))


def measure_rss(kind: str, path: Path, queries_file: Path, candidates: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--rss-child", kind, str(path), str(queries_file), str(candidates)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@attrs.frozen
class Vectors:
    """Documents and queries of one benchmark set; ``split`` gives nDCG@10 where there are qrels."""

    docs: np.ndarray
    queries: np.ndarray
    split: common.EncodedSplit | None = None
    encode_seconds: float = 0.0


def load_vectors(name: str, pypi_docs: int, pypi_queries: int, seed: int) -> Vectors:
    if name == "pypi-summaries":
        return load_pypi(pypi_docs, pypi_queries, seed)
    split = common.encode_split(common.load(name), "test")
    return Vectors(split.docs, split.queries, split)


def load_pypi(n_docs: int, n_queries: int, seed: int) -> Vectors:
    """A seeded sample of pypi-summaries: ``n_docs`` documents and ``n_queries`` held-out summaries as
    queries (no qrels), MiniLM-encoded once through the shared embedding cache."""
    with gzip.open(common.SHARED_DATA / "pypi-summaries" / "pypi-summaries.tsv.gz", "rt", encoding="utf-8") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in handle]
    name, summary = header.index("name"), header.index("summary")
    picked = np.random.default_rng(seed).choice(len(rows), n_docs + n_queries, replace=False)
    corpus = Corpus([rows[i][name] for i in picked[:n_docs]], [rows[i][summary] for i in picked[:n_docs]])
    queries = Queries([f"q-{rows[i][name]}" for i in picked[n_docs:]], [rows[i][summary] for i in picked[n_docs:]])
    encoder, cache = common.encoder("minilm"), EmbeddingCache()
    docs = cache.get_or_compute(cache.key(encoder, "documents", corpus.content_hash),
                                lambda: encoder.encode_documents(corpus.documents()))
    found = cache.get_or_compute(cache.key(encoder, "queries", queries.content_hash),
                                 lambda: encoder.encode_queries(list(queries.texts)))
    return Vectors(docs.embeddings, found.embeddings, None, docs.seconds + found.seconds)


def row(label: str, n: object, truth: np.ndarray, result: SearchResult, data: Vectors, seconds: float,
        memory: int, read: float) -> dict:
    return {"method": label, "N": n, "recall@10": common.recall_at_k(truth, result.indices, 10),
            "nDCG@10": data.split.ndcg(result) if data.split is not None else float("nan"),
            "ms/query": 1000 * seconds / len(data.queries), "memory": memory, "read/query": read}


def run_dataset(data: Vectors, m: int, candidates: list[int], repeats: int, seed: int) -> list[dict]:
    docs, queries, split = data.docs, data.queries, data
    exact = ExactIndex()
    exact.build(docs)
    truth = exact.search(queries, 10).indices
    rows = []
    flat = faiss.IndexFlatIP(docs.shape[1])
    flat.add(docs)
    seconds, (scores, ids) = common.best_time(lambda: flat.search(queries, 10), repeats)
    rows.append(row("faiss flat", "-", truth, SearchResult(scores, ids), split, seconds, docs.nbytes, 0))
    faiss_pq = faiss.IndexPQ(docs.shape[1], m, 8, faiss.METRIC_INNER_PRODUCT)
    faiss_pq.pq.cp.min_points_per_centroid = 1  # small corpora: no "too few points" warning
    faiss_pq.train(docs)
    faiss_pq.add(docs)
    seconds, (scores, ids) = common.best_time(lambda: faiss_pq.search(queries, 10), repeats)
    rows.append(row("faiss PQ", "-", truth, SearchResult(scores, ids), split, seconds,
                    faiss_pq.codes.size() + faiss_pq.pq.centroids.size() * 4, 0))
    index = BiDRIndex(m=m, seed=seed)
    index.build(docs)
    seconds, result = common.best_time(lambda: index.search_codes(queries, 10), repeats)
    rows.append(row("bidr codes only", "-", truth, result, split, seconds, index.memory_bytes, 0))
    for n in candidates:
        seconds, result = common.best_time(lambda n=n: index.search(queries, 10, candidates=n), repeats)
        rows.append(row("bidr", min(n, len(docs)), truth, result, split, seconds, index.memory_bytes,
                        index.last_bytes_read / len(queries)))
    return rows


def rss_table(split: Vectors, m: int, candidates: int, seed: int) -> dict[str, dict]:
    """RSS of a fresh process loading and searching the saved exact and bidr indexes."""
    with tempfile.TemporaryDirectory(prefix="bench-bidr-") as tmp:
        root = Path(tmp)
        np.save(root / "queries.npy", split.queries)
        exact = ExactIndex()
        exact.build(split.docs)
        exact.save(root / "exact")
        index = BiDRIndex(m=m, seed=seed)
        index.build(split.docs)
        index.save(root / "bidr")
        return {kind: measure_rss(kind, root / kind, root / "queries.npy", candidates) for kind in ("exact", "bidr")}


def print_rows(rows: list[dict]) -> None:
    flat = rows[0]
    print(f"{'method':<16} {'N':>5} {'R@10':>6} {'nDCG@10':>7} {'ms/q':>7} {'x flat':>6} "
          f"{'memory B':>10} {'mem/flat':>8} {'disk B read/q':>13}")
    for r in rows:
        print(f"{r['method']:<16} {r['N']:>5} {r['recall@10']:>6.3f} {r['nDCG@10']:>7.4f} {r['ms/query']:>7.3f} "
              f"{r['ms/query'] / flat['ms/query']:>6.1f} {r['memory']:>10,} {r['memory'] / flat['memory']:>8.3f} "
              f"{r['read/query']:>13,.0f}")


def plot(results: dict[tuple[str, int], list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len({d for d, _ in results}), figsize=(11, 4), squeeze=False)
    datasets = sorted({d for d, _ in results})
    for (name, m), rows in sorted(results.items()):
        ax = axes[0][datasets.index(name)]
        two_tier = [r for r in rows if r["method"] == "bidr"]
        line, = ax.plot([r["N"] for r in two_tier], [r["recall@10"] for r in two_tier], "o-", label=f"bidr m={m}")
        codes = next(r for r in rows if r["method"] == "bidr codes only")
        ax.axhline(codes["recall@10"], ls="--", color=line.get_color(), label=f"codes only m={m}")
        ax.set(xscale="log", xlabel="candidates N re-scored from disk", ylabel="recall@10 vs exact",
               title=f"{name}: MiniLM, PQ m x 256 in memory")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"plot: {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--m", nargs="+", type=int, default=[16, 48], help="PQ subspaces (x 256 centroids)")
    parser.add_argument("--candidates", nargs="+", type=int, default=DEFAULT_N)
    parser.add_argument("--rss-candidates", type=int, default=300)
    parser.add_argument("--pypi-docs", type=int, default=20000, help="pypi-summaries: documents sampled")
    parser.add_argument("--pypi-queries", type=int, default=500, help="pypi-summaries: held-out rows as queries")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=DOCS / "bidr.png")
    parser.add_argument("--rss-child", nargs=4, metavar=("KIND", "PATH", "QUERIES", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    common.report_load()
    if args.rss_child:
        kind, path, queries_file, n = args.rss_child
        rss_child(kind, path, queries_file, int(n))
        return
    faiss.omp_set_num_threads(1)
    results = {}
    for name in args.datasets:
        data = load_vectors(name, args.pypi_docs, args.pypi_queries, args.seed)
        for m in args.m:
            rows = run_dataset(data, m, args.candidates, args.repeats, args.seed)
            results[(name, m)] = rows
            encoded = f"; encoding took {data.encode_seconds:.0f} s" if data.encode_seconds else ""
            print(f"\n## {name}, PQ m={m} x 256 centroids ({len(data.docs):,} MiniLM vectors, 384-d, "
                  f"{len(data.queries)} queries{encoded})")
            print_rows(rows)
        m = max(args.m)
        print(f"\nresident memory of a fresh process loading and searching {name} "
              f"(bidr m={m}, N={args.rss_candidates}), bytes:")
        for kind, values in rss_table(data, m, args.rss_candidates, args.seed).items():
            print(f"  {kind:<6} memory_bytes {values['memory_bytes']:>10,}  after load: " +
                  "  ".join(f"{k} {v:>+11,}" for k, v in values["load"].items()) + "  after search: " +
                  "  ".join(f"{k} {v:>+11,}" for k, v in values["search"].items()))
    plot(results, args.plot)


if __name__ == "__main__":
    main()
