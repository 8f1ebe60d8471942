"""``python -m embedlab_posir RESULTS_DIR [--metric nDCG@10] [--bins 10]``: the position curve of
every pipeline of an ``embedlab run --output RESULTS_DIR`` on ``posir-needle`` (or any dataset whose
corpus has a ``fact_depth`` attribute), overall and per nominal length."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from embedlab.datasets import load_dataset_spec
from embedlab_posir.sensitivity import position_curve


def curves(results: dict, metric: str, bins: int) -> list[dict]:
    """One row per pipeline and length bucket (``all`` first) with the curve's statistics."""
    spec = dict(results["config"]["dataset"])
    split_name = spec.pop("split", "test")
    spec.pop("train_split", None)
    data = load_dataset_spec(**spec)
    split = data.split(split_name)
    corpus = data.corpus
    depth, length = corpus.attributes["fact_depth"], corpus.attributes.get("length")
    relevant = {q: next(iter(judged)) for q, judged in split.qrels.items()}
    rows = []
    for pipeline in results["pipelines"]:
        values = pipeline["per_query"][metric]
        queries = sorted(values)
        docs = np.asarray([corpus.position[relevant[q]] for q in queries])
        scores = np.asarray([values[q] for q in queries])
        groups = [("all", np.ones(len(docs), bool))]
        if length is not None:
            groups += [(str(int(n)), length[docs] == n) for n in np.unique(length)]
        for name, keep in groups:
            curve = position_curve(scores[keep], depth[docs][keep], bins)
            rows.append({"pipeline": pipeline["name"], "length": name, **curve.to_json()})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path, help="an `embedlab run --output` directory")
    parser.add_argument("--metric", default="nDCG@10")
    parser.add_argument("--bins", type=int, default=10)
    parser.add_argument("--json", type=Path, help="write the curves here")
    args = parser.parse_args()
    results = json.loads((args.results / "results.json").read_text(encoding="utf-8"))
    rows = curves(results, args.metric, args.bins)
    print(f"{'pipeline':<16} {'length':>6} {'mean':>6} {'PSI':>6} {'slope':>7}  {args.metric} per position bin")
    for row in rows:
        means = " ".join("  -  " if m is None else f"{m:.2f}" for m in row["means"])
        print(f"{row['pipeline']:<16} {row['length']:>6} {row['mean']:>6.3f} {row['psi']:>6.3f} "
              f"{row['slope']:>7.3f}  {means}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
