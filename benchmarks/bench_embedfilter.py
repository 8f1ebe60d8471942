"""EmbedFilter (embedlab-embedfilter) against PCA and a random subspace at equal dimensions.

all-MiniLM-L6-v2 vectors (the shared embedding cache) of the whole corpus and the test queries are
projected on a k-dimensional subspace: EmbedFilter's bands of the SVD of MiniLM's tied word
embeddings (``edge``, the paper's default; ``tail``, the top k; ``mid``), the top k principal
components of the corpus vectors (``pca``) and random orthonormal subspaces (``random``, 5 seeds;
``rand``: k random rows of the unembedding SVD, 5 seeds); documents re-normalised in the subspace,
exact inner-product search; nDCG@10 on the test split, paired t-test and Wilcoxon per query of
``edge`` against ``pca`` and ``random`` at every k (Holm over the k's). The storage-vs-nDCG points
and their Pareto front come from embedlab-storage's machinery (``ParetoPoint``, ``pareto_front``).
No training and no tuning: nothing is chosen on the test split.

    python benchmarks/bench_embedfilter.py --datasets scifact python-stdlib --plot docs/benchmarks/embedfilter.png
"""

from __future__ import annotations

import argparse

import attrs
import common
import numpy as np
from embedlab_storage.pareto import ParetoPoint, pareto_front

import embedlab
from embedlab.metrics import evaluate
from embedlab.stats import holm, paired_tests

DIMS = (48, 96, 192, 288)
SEEDS = (0, 1, 2, 3, 4)
METHODS = {"edge": {}, "tail": {"band": "tail"}, "mid": {"band": "mid"}, "rand": {"band": "rand"},
           "pca": {"basis": "pca"}, "random": {"basis": "random"}}
SEEDED = {"rand", "random"}


def per_query(split: common.EncodedSplit, compressor) -> dict[str, float]:
    docs = compressor.encode(split.docs)
    queries = split.queries @ compressor.projection.T
    projected = attrs.evolve(split, docs=docs, queries=queries)
    return evaluate(projected.exact_ranking(100), split.qrels, ["nDCG@10"]).query_values("nDCG@10")


def run_dataset(name: str, dims: tuple[int, ...]) -> dict:
    dataset = common.load(name)
    split = common.encode_split(dataset, "test")
    full = evaluate(split.exact_ranking(100), split.qrels, ["nDCG@10"]).query_values("nDCG@10")
    rows = [{"method": "full", "dims": split.docs.shape[1], "ndcg10": float(np.mean(list(full.values())))}]
    values: dict[tuple[str, int], dict[str, float]] = {}
    for k in dims:
        for method, params in METHODS.items():
            runs = []
            for seed in (SEEDS if method in SEEDED else (0,)):
                compressor = embedlab.create("compressor", "embedfilter", dims=k, seed=seed, **params).fit(split.docs)
                runs.append(per_query(split, compressor))
            mean = {q: float(np.mean([r[q] for r in runs])) for q in runs[0]}
            values[(method, k)] = mean
            row = {"method": method, "dims": k, "ndcg10": float(np.mean(list(mean.values())))}
            if len(runs) > 1:
                row["seed_sd"] = float(np.std([np.mean(list(r.values())) for r in runs], ddof=1))
            rows.append(row)
            print(f"{name} {method}:{k}: nDCG@10 {row['ndcg10']:.4f}"
                  + (f" (sd over seeds {row['seed_sd']:.4f})" if "seed_sd" in row else ""), flush=True)
    tests = {}
    for baseline in ("pca", "random"):
        found = [paired_tests(values[("edge", k)], values[(baseline, k)], system_name=f"edge:{k}",
                              baseline_name=f"{baseline}:{k}") for k in dims]
        for k, t, p_t, p_w in zip(dims, found, holm([t.p_ttest for t in found]), holm([t.p_wilcoxon for t in found])):
            tests[f"edge vs {baseline} at {k}"] = {"delta": t.mean_difference, "t_p_holm": float(p_t),
                                                   "wilcoxon_p_holm": float(p_w)}
            print(f"{name} edge vs {baseline} at {k}: {t.mean_difference:+.4f} (Holm t p {p_t:.2g}, "
                  f"Wilcoxon p {p_w:.2g})", flush=True)
    sizes = [4.0 * r["dims"] for r in rows]
    front = pareto_front(sizes, [r["ndcg10"] for r in rows])
    base = rows[0]["ndcg10"]
    points = [ParetoPoint(f"{r['method']}:{r['dims']}", size, r["ndcg10"], r["ndcg10"] / base - 1, sizes[0] / size,
                          0.0, 0.0, bool(on)) for r, size, on in zip(rows, sizes, front)]
    return {"rows": rows, "tests": tests, "front": [p.spec for p in points if p.on_front],
            "queries": len(full)}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        full = next(r for r in result["rows"] if r["method"] == "full")
        for method in METHODS:
            rows = sorted((r for r in result["rows"] if r["method"] == method), key=lambda r: r["dims"])
            ax.plot([4 * r["dims"] for r in rows], [r["ndcg10"] for r in rows], marker="o", label=method)
        ax.axhline(full["ndcg10"], color="k", linestyle="--", linewidth=1, label=f"full {full['dims']}-d float32")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("bytes per document (float32)")
        ax.set_ylabel("nDCG@10 (test)")
        ax.set_title(f"{name}: Pareto front {', '.join(result['front'])}", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--dims", nargs="+", type=int, default=list(DIMS))
    parser.add_argument("--plot", help="write the storage-vs-nDCG@10 plot here (PNG)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    results = {name: run_dataset(name, tuple(args.dims)) for name in args.datasets}
    if args.plot:
        plot(results, args.plot)
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
