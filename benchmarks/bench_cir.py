"""Composed image retrieval on the synthetic ``scenes`` dataset: the two-stage joint encoder
(embedlab-cir) against the paper's baselines that apply at this scale, with the same training budget.

    python benchmarks/bench_cir.py --variants joint,sum --json docs/benchmarks/cir_scenes.json
    python benchmarks/bench_cir.py --variants image,text,zero-shot,joint-no-stage1,pixels \\
        --json docs/benchmarks/cir_scenes.json
    python benchmarks/bench_cir.py --table docs/benchmarks/cir_scenes.json

Dataset: ``scenes`` (``--n-train`` training triplets, ``--n-test`` queries in each of test-seen and
test-unseen, 3 distractor edits of each reference in the corpus, references excluded from their own
ranking), one corpus of every image. Text side: all-MiniLM-L6-v2 (encoder ``minilm``), frozen. Every
trained variant gets ``--stage1-steps`` + ``--stage2-steps`` steps of batch ``--batch-size``:

* ``joint`` (the method): stage 1 image-caption alignment, stage 2 triplets (positive: the target's
  caption), query = one pass over the reference image's tokens and the instruction token;
* ``sum``: the same two stages, query = image embedding + instruction embedding, each encoded alone
  (late fusion trained on the triplets: the supervised control that isolates the joint encoding);
* ``image`` / ``text``: the same two stages, query = the reference image / the instruction only;
* ``zero-shot``: stage 1 only, for both stages' steps; evaluated with image-only, text-only and sum
  queries (the CLIP-style zero-shot baselines);
* ``joint-no-stage1``: stage 2 only, for both stages' steps (what stage 1 adds);
* ``joint-image-target``: ``joint`` with the target images as stage 2's positives instead of the
  target captions (the paper's code contrasts the composed query with the target's text);
* ``pixels``: raw pixels of the reference (no training; the floor).

Metrics: Recall@1/5/10 (one target per query) on test-seen and test-unseen (targets holding a
(colour, shape) combination never shown in training). Results are merged into ``--json`` by variant.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import attrs

import embedlab
from embedlab.datasets import synthetic_scenes
from embedlab.metrics import evaluate
from embedlab.pipeline import Pipeline
from embedlab.training import TrainingData

SPLITS = ("test-seen", "test-unseen")
METRICS = ["R@1", "R@5", "R@10"]


def evaluate_encoder(encoder, dataset) -> dict[str, dict[str, float]]:
    pipeline = Pipeline(encoder=encoder, progress=False)
    pipeline.build(dataset.corpus)
    out = {}
    for name in SPLITS:
        split = dataset.split(name)
        ranking = pipeline.search(split.queries, 10, exclude=split.exclude)
        out[name] = {m: round(float(v), 4) for m, v in evaluate(ranking, split.qrels, METRICS).aggregates.items()}
    return out


def trained(dataset, args, *, query: str, stage1: int, stage2: int, target: str = "caption"):
    from embedlab_cir import CIREncoder

    encoder = CIREncoder(query=query, stage1_steps=stage1, stage2_steps=stage2, batch_size=args.batch_size,
                         seed=args.seed, num_threads=args.threads, show_progress=True, stage2_target=target)
    start = time.perf_counter()
    encoder.fit_queries(TrainingData(dataset.corpus, dataset.split("train")))
    seconds = time.perf_counter() - start
    reports = {k: attrs.asdict(v) for k, v in encoder.reports.items()}
    return encoder, {"train_seconds": round(seconds, 1), "reports": reports}


def with_query(encoder, query: str):
    """The same trained network, queried another way."""
    other = type(encoder)(attrs.evolve(encoder.config, query=query))
    other.model = encoder.model
    return other


def run_variant(name: str, dataset, args) -> dict[str, dict]:
    s1, s2 = args.stage1_steps, args.stage2_steps
    if name == "pixels":
        return {"pixels (image only)": evaluate_encoder(embedlab.create("encoder", "pixels", composed="image"),
                                                        dataset)}
    if name == "zero-shot":
        encoder, info = trained(dataset, args, query="sum", stage1=s1 + s2, stage2=0)
        return {f"zero-shot {q}": {**evaluate_encoder(with_query(encoder, q), dataset), **info}
                for q in ("image", "text", "sum")}
    if name == "joint-no-stage1":
        encoder, info = trained(dataset, args, query="joint", stage1=0, stage2=s1 + s2)
        return {name: {**evaluate_encoder(encoder, dataset), **info}}
    if name == "joint-image-target":
        encoder, info = trained(dataset, args, query="joint", stage1=s1, stage2=s2, target="image")
        return {"joint (two stages, image targets)": {**evaluate_encoder(encoder, dataset), **info}}
    encoder, info = trained(dataset, args, query=name, stage1=s1, stage2=s2)
    return {f"{name} (two stages)": {**evaluate_encoder(encoder, dataset), **info}}


def table(path: Path) -> str:
    data = json.loads(path.read_text())
    lines = ["| variant | seen R@1 | R@5 | R@10 | unseen R@1 | R@5 | R@10 | train s |", "|---|" + "---|" * 7]
    for name, row in data["rows"].items():
        cells = [f"{row[s][m]:.3f}" for s in SPLITS for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {row.get('train_seconds', 0):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants",
                        default="joint,sum,image,text,zero-shot,joint-no-stage1,joint-image-target,pixels")
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--stage1-steps", type=int, default=400)
    parser.add_argument("--stage2-steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--table", type=Path, help="print the markdown table of a results file and exit")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
        return
    dataset = synthetic_scenes(n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    settings = {k: getattr(args, k) for k in ("n_train", "n_test", "stage1_steps", "stage2_steps", "batch_size",
                                              "seed")}
    results = json.loads(args.json.read_text()) if args.json and args.json.exists() else {"rows": {}}
    stored = results.get("settings")
    if stored and {k: stored.get(k) for k in settings} != settings:
        raise SystemExit(f"{args.json} holds results of other settings {stored}")
    results["settings"] = {**settings, "heldout": dataset.metadata["heldout"], "corpus": len(dataset.corpus)}
    for variant in args.variants.split(","):
        rows = run_variant(variant, dataset, args)
        results["rows"].update(rows)
        for name, row in rows.items():
            print(name, {s: row[s] for s in SPLITS}, f"train {row.get('train_seconds', 0)} s", flush=True)
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(results, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
