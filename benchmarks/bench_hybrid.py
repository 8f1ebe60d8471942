"""Hybrid retrieval (BM25 + MiniLM fusion, cascades) on SciFact and python-stdlib.

Run from the repository root::

    python benchmarks/bench_hybrid.py [--datasets scifact python-stdlib] [--config examples/hybrid.toml] \
        [--json out.json]

Runs ``examples/hybrid.toml`` (or ``--config``, e.g. ``examples/hybrid-code.toml``: BM25 with the
identifier-splitting ``code`` analyzer) on each dataset (python-stdlib: the same pipelines on its test split,
weights tuned on its train split) and prints, per pipeline, nDCG@10 with paired t-test and Wilcoxon
p-values (Holm over the fused pipelines) against *both* first stages, queries improved/degraded,
ms/query by stage, the tuned weights, and nDCG@10 on the unseen subset (test queries none of whose
relevant documents is relevant to a training query; the weights are the only thing learned).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import attrs
import common

from embedlab import stats
from embedlab.cache import EmbeddingCache
from embedlab.experiment import load_config
from embedlab.experiment.runner import run_experiment
from embedlab.splits import unseen_qrels

REPO = Path(__file__).resolve().parents[1]
FIRST_STAGES = ("bm25", "minilm")


def config_for(path: Path, name: str):
    config = load_config(path)
    if name == "scifact":
        return config
    return attrs.evolve(config, dataset={"name": name})


def report(path: Path, name: str) -> dict:
    result = run_experiment(config_for(path, name), cache=EmbeddingCache())
    train = result.dataset.split(result.config.train_split)
    unseen = unseen_qrels(result.split.qrels, train.qrels)
    per_query = {o.name: dict(zip(o.evaluation.query_ids, o.evaluation.per_query["nDCG@10"])) for o in result.outcomes}
    fused = [o for o in result.outcomes if o.name not in FIRST_STAGES]
    tests = {base: [stats.paired_tests(per_query[o.name], per_query[base]) for o in fused] for base in FIRST_STAGES}
    holm = {base: (stats.holm([t.p_ttest for t in tests[base]]), stats.holm([t.p_wilcoxon for t in tests[base]]))
            for base in FIRST_STAGES}
    print(f"\n### {result.dataset.name} / {result.split.name}: {len(result.dataset.corpus):,} documents, "
          f"{len(result.split.queries)} queries ({len(unseen)} unseen); weights tuned on "
          f"{result.config.train_split!r}\n")
    print("| pipeline | nDCG@10 | vs bm25: diff, p(t), p(W), +/- | vs minilm: diff, p(t), p(W), +/- | nDCG@10 unseen "
          "| R@100 | ms/query by stage | weights |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for outcome in result.outcomes:
        ndcg = outcome.evaluation.aggregates["nDCG@10"]
        unseen_ndcg = sum(per_query[outcome.name][q] for q in unseen) / max(len(unseen), 1)
        cells = []
        for base in FIRST_STAGES:
            if outcome.name in FIRST_STAGES:
                cells.append("")
                continue
            i = fused.index(outcome)
            t = tests[base][i]
            cells.append(f"{t.mean_difference:+.4f}, {holm[base][0][i]:.2g}, {holm[base][1][i]:.2g}, "
                         f"{t.improved}/{t.degraded}")
        stages = " + ".join(f"{ms:.1f}" for ms in outcome.timings.stage_latencies_ms().values())
        weights = outcome.fitted.get("weights") if outcome.fitted.get("tuned") else ""
        print(f"| {outcome.name} | {ndcg:.4f} | {cells[0]} | {cells[1]} | {unseen_ndcg:.4f} | "
              f"{outcome.evaluation.aggregates['R@100']:.4f} | {stages} | {weights} |")
        rows.append({"pipeline": outcome.name, "ndcg10": ndcg, "unseen_ndcg10": unseen_ndcg,
                     "aggregates": dict(outcome.evaluation.aggregates), "fitted": outcome.fitted,
                     "stage_ms": outcome.timings.stage_latencies_ms()})
    return {"dataset": result.dataset.name, "queries": len(result.split.queries), "unseen": len(unseen),
            "pipelines": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["scifact", "python-stdlib"])
    parser.add_argument("--config", type=Path, default=REPO / "examples" / "hybrid.toml",
                        help="experiment file whose dataset is SciFact (other datasets replace it)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    common.report_load("before")
    results = [report(args.config, name) for name in args.datasets]
    if args.json:
        common.write_json(args.json, args, results)


if __name__ == "__main__":
    main()
