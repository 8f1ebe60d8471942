"""The embedding-table benchmark's post-hoc compressors on MiniLM passage vectors (issue #18, retrieval side).

    python benchmarks/bench_table_compressors.py                     # SciFact + python-stdlib
    python benchmarks/bench_table_compressors.py --datasets scifact --only table-int,pq
    python benchmarks/bench_table_compressors.py --plot-dir docs/benchmarks --json /tmp/tables-retrieval.json

all-MiniLM-L6-v2 (ONNX, the benchmarks' shared embedding cache), whole corpus, test queries, exact
inner-product search through ``ExactIndex.use_compressor`` (float queries against each compressor's
codes). For every compressor: bytes of its codes per vector, bytes of its fitted model (scales,
codebooks, TT cores, dedup representatives), the amortised total per vector (codes + model / rows,
what a table's memory counts), recall@10 against exact float32 search, nDCG@10 and its change vs
float32 (+- the standard error of the paired per-query differences), fit seconds. Beside the table
compressors (embedlab-tables ``table-*``): embedlab-storage's codecs, the core ``pq`` (the post-hoc
form of DPQ/MGQE codes) and FAISS ``IndexPQ`` at the same code sizes. Quality numbers do not
depend on the load; fit seconds do (the load is printed).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import common
import faiss
import numpy as np
from tqdm import tqdm

import embedlab
from embedlab import SearchResult
from embedlab.index import ExactIndex

K = 10
#: (family, label, component name, parameters); ``faiss-pq`` rows are FAISS IndexPQ, not components.
CONFIGS: list[tuple[str, str, str, dict[str, Any]]] = [
    ("float32", "float32", "storage", {"spec": "float32"}),
    *[("table-int (INT8/INT16)", f"table-int bits={b}", "table-int", {"bits": b}) for b in (16, 8)],
    ("table-int row scale (ALPT-style)", "table-int bits=8 scale=row", "table-int", {"bits": 8, "scale": "row"}),
    *[("table-prune (DeepLight/PEP)", f"table-prune keep={k:g}", "table-prune", {"keep": k})
      for k in (0.5, 0.25, 0.125, 0.0625, 0.03125)],
    *[("table-tt (TT-Rec)", f"table-tt rank={r}", "table-tt", {"rank": r}) for r in (8, 16, 32, 64, 128)],
    *[("table-tt, rows sorted by PCA", f"table-tt rank={r} order=pca", "table-tt", {"rank": r, "order": "pca"})
      for r in (16, 64)],
    *[("table-dedup (Dedup)", f"table-dedup ratio={r:g}", "table-dedup", {"ratio": r}) for r in (2.0, 4.0, 10.0)],
    *[("storage", f"storage {s}", "storage", {"spec": s})
      for s in ("float16", "int8", "pca:0.5+int8", "pca:0.25+int8", "pca:0.125+int8", "binary")],
    *[("pq (DPQ/MGQE post hoc)", f"pq m={m}", "pq", {"m": m, "ksub": 256, "seed": 0}) for m in (96, 48, 24, 12)],
    *[("faiss IndexPQ", f"faiss PQ{m}", "faiss-pq", {"m": m}) for m in (96, 48, 24, 12)],
]


def fit(name: str, params: dict[str, Any], docs: np.ndarray, queries: np.ndarray,
        split: common.EncodedSplit) -> tuple[SearchResult, dict[str, float]]:
    """Top-``K`` search result of one configuration, its bytes and fit seconds."""
    start = time.perf_counter()
    if name == "faiss-pq":
        index = faiss.IndexPQ(docs.shape[1], params["m"], 8, faiss.METRIC_INNER_PRODUCT)
        index.train(docs)
        index.add(docs)
        fit_s = time.perf_counter() - start
        scores, positions = index.search(queries, K)
        model = faiss.downcast_index(index).pq.centroids.size() * 4
        return SearchResult(scores, positions), {"code": index.sa_code_size(), "model": model, "fit_s": fit_s}
    compressor = embedlab.create("compressor", name, **params).fit(docs)
    fit_s = time.perf_counter() - start
    index = ExactIndex(metric="ip")
    index.use_compressor(compressor)
    index.build(docs)
    model = int(getattr(compressor, "memory_bytes", 0))
    return index.search(queries, K), {"code": compressor.bytes_per_vector, "model": model, "fit_s": fit_s}


def benchmark(name: str, only: set[str] | None) -> list[dict[str, Any]]:
    data = common.encode_split(common.load(name), "test")
    docs, queries = np.ascontiguousarray(data.docs, np.float32), np.ascontiguousarray(data.queries, np.float32)
    print(f"\n## {name}: {len(docs):,} documents, {len(queries)} test queries, dimension {docs.shape[1]}\n", flush=True)
    configs = [c for c in CONFIGS if only is None or c[2] in only or c[0] == "float32"]
    rows: list[dict[str, Any]] = []
    truth = None
    for family, label, component, params in tqdm(configs, desc=name, unit="config"):
        result, sizes = fit(component, params, docs, queries, data)
        per_query = data.per_query(result)
        values = np.array([per_query.get(q, 0.0) for q in data.query_ids])
        if truth is None:
            truth = result.indices
        total = sizes["code"] + sizes["model"] / len(docs)
        rows.append({"dataset": name, "family": family, "label": label, **sizes, "total": total,
                     "recall": common.recall_at_k(truth, result.indices, K), "ndcg": float(values.mean()),
                     "per_query": values})
    base = rows[0]
    print("| family | config | code B/vec | model bytes | total B/vec | x vs float32 | R@10 vs exact | nDCG@10 "
          "| vs float32 +- s.e. | fit s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        diff = row["per_query"] - base["per_query"]
        error = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0.0
        row["delta"], row["delta_se"] = float(diff.mean()), float(error)
        print(f"| {row['family']} | {row['label']} | {row['code']:g} | {row['model']:,} | {row['total']:.1f} | "
              f"{base['total'] / row['total']:.1f} | {row['recall']:.3f} | {row['ndcg']:.4f} | "
              f"{row['delta']:+.4f} +- {error:.4f} | {row['fit_s']:.1f} |")
    return rows


def plot(name: str, rows: list[dict[str, Any]], directory: Path) -> Path:
    """Recall@10 vs bytes per vector: codes only (left) and amortised with the model (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, key, title in ((axes[0], "code", "code bytes per vector"),
                           (axes[1], "total", "codes + model / rows (amortised bytes per vector)")):
        for family in dict.fromkeys(r["family"] for r in rows):
            points = sorted((r[key], r["recall"]) for r in rows if r["family"] == family)
            ax.plot(*zip(*points), marker="o", label=family)
        ax.set_xscale("log")
        ax.set_xlabel(title)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("recall@10 vs exact float32")
    axes[1].legend(fontsize=7)
    fig.suptitle(f"{name}: table compressors post hoc on MiniLM vectors vs embedlab-storage, PQ, FAISS PQ")
    fig.tight_layout()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"tables-retrieval-{name}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="scifact,python-stdlib")
    parser.add_argument("--only", help="comma-separated component names (table-int, table-tt, storage, pq, "
                                       "faiss-pq...); float32 always runs")
    parser.add_argument("--plot-dir", type=Path, help="write tables-retrieval-<dataset>.png here")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()
    common.report_load()
    faiss.omp_set_num_threads(1)
    only = set(args.only.split(",")) if args.only else None
    results = []
    for name in args.datasets.split(","):
        rows = benchmark(name, only)
        results += [{k: v for k, v in r.items() if k != "per_query"} for r in rows]
        if args.plot_dir is not None:
            print(f"wrote {plot(name, rows, args.plot_dir)}")
    if args.json is not None:
        print(f"wrote {common.write_json(args.json, args, results)}")


if __name__ == "__main__":
    main()
