"""``python -m embedlab_lmeb RESULTS_DIR``: per query type means of every metric of an
``embedlab run --output RESULTS_DIR`` on ``lmeb-dialogue`` (single-hop, temporal, knowledge-update)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from embedlab.datasets import load_dataset_spec
from embedlab_lmeb.dialogue import KINDS


def by_kind(results: dict) -> list[dict]:
    """One row per pipeline, metric and query type."""
    spec = {k: v for k, v in results["config"]["dataset"].items() if k not in ("split", "train_split")}
    kinds = load_dataset_spec(**spec).metadata["query_kinds"]
    rows = []
    for pipeline in results["pipelines"]:
        for metric, values in pipeline["per_query"].items():
            for kind in ("all", *KINDS):
                chosen = [v for q, v in values.items() if kind == "all" or kinds[q] == kind]
                rows.append({"pipeline": pipeline["name"], "metric": metric, "kind": kind,
                             "queries": len(chosen), "mean": float(np.mean(chosen)) if chosen else float("nan")})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, help="an `embedlab run --output` directory")
    args = parser.parse_args()
    rows = by_kind(json.loads((args.results / "results.json").read_text(encoding="utf-8")))
    print(f"{'pipeline':<12} {'metric':<10} " + " ".join(f"{k:>16}" for k in ("all", *KINDS)))
    for start in range(0, len(rows), 1 + len(KINDS)):
        group = rows[start:start + 1 + len(KINDS)]
        print(f"{group[0]['pipeline']:<12} {group[0]['metric']:<10} "
              + " ".join(f"{r['mean']:>10.3f} ({r['queries']:>3})" for r in group))


if __name__ == "__main__":
    main()
