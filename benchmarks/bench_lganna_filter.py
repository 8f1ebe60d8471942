"""LG-ANNA's adaptive-margin filter on planted false negatives, swept over the relative margin.

The planted set of embedlab-lganna's test suite: 24 topic queries, each with its positive, an unjudged
renamed copy of the positive (a planted false negative) and other documents; candidates are BM25's top
10, the teacher is all-MiniLM-L6-v2 MaxSim. Per margin: how many planted copies are among the
candidates, how many the filter drops, and how many of the other candidates it drops too.

    python benchmarks/bench_lganna_filter.py --margins 0 0.05 0.1 0.2
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch
from embedlab_lganna import AdaptiveMargin
from embedlab_train import TrainingContext

from embedlab.cache import EmbeddingCache
from embedlab.threads import torch_threads

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "lganna" / "tests"))
from test_lganna import planted_false_negatives  # noqa: E402  (the test suite's planted set)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    args = parser.parse_args()
    data, planted = planted_false_negatives()
    queries = data.query.tolist()
    print("| relative margin | planted copies among candidates | copies dropped | other candidates dropped |")
    print("|---|---|---|---|")
    with torch_threads(1), tempfile.TemporaryDirectory() as cache:
        context = TrainingContext(data, 32, torch.device("cpu"), 0, EmbeddingCache(cache))
        for margin in args.margins:
            sampler = AdaptiveMargin(first_stage="bm25", depth=10, count=2, relative_margin=margin,
                                     teacher={"name": "maxsim", "num_threads": 1, "show_progress": False})
            sampler.prepare(context)
            present = sum(planted[q] in set(p.tolist()) | set(r.tolist())
                          for q, p, r in zip(queries, sampler.pools, sampler.removed))
            caught = sum(planted[q] in set(r.tolist()) for q, r in zip(queries, sampler.removed))
            others = sum(len(p) + len(r) for p, r in zip(sampler.pools, sampler.removed)) - present
            dropped = sum(len(set(r.tolist()) - {planted[q]}) for q, r in zip(queries, sampler.removed))
            print(f"| {margin:g} | {present}/{len(queries)} | {caught} ({caught / len(queries):.0%}) | "
                  f"{dropped}/{others} ({dropped / max(others, 1):.1%}) |", flush=True)


if __name__ == "__main__":
    main()
