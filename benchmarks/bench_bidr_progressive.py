"""BiDR's stage 2: locality-centric sampling and progressive optimisation, measured on fine-tuned MiniLM.

    python benchmarks/bench_bidr_progressive.py --datasets scifact --train-queries 640 \\
        --set lr=5e-05 train_max_length=64 eval_steps=10 max_length=64 --threads 1 \\
        --json results/bench_bidr_progressive_scifact.json

Stage 1 (BiDR's contrastive quantisation, :mod:`embedlab_bidr.contrastive`): FAISS ``OPQ{m},PQ{m}``
fitted on the corpus's zero-shot MiniLM vectors, its codebooks trained with InfoNCE on a seeded
sample of ``--train-queries`` *training* queries, the learning rate chosen among ``--stage1-lr`` by
held-out training queries' code-tier recall@100; the trained code tier is saved as a core ``exact``
index over the codes (in the embedlab cache, reused by later runs).

Stage 2 (the dense tier, MiniLM fine-tuned through embedlab-train with bench_train.py's budget and
step selection on held-out training queries; InfoNCE, one negative per example drawn uniformly
each epoch from its query's top 200 candidates, ground truth excluded, as BiDR's graph):

* ``random-batches``: candidates from zero-shot MiniLM (exact search), the loop's seeded random
  batches: the supervised control;
* ``locality``: the same candidates, batches that walk the query-candidate graph (random walk):
  locality-centric sampling alone;
* ``progressive``: the same walk over the graph of stage 1's *trained* index (the saved index is
  the sampler's first stage, ``index = { load = "<directory>" }``): progressive optimisation.

Each is evaluated by bench_train.py's ``quality`` (test split, unseen subset, zero-shot row, paired
tests; ``--versus`` the control and ``locality``). Every fine-tuning is cached, so a killed run
resumes from the finished ones (``--configs`` runs a subset).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import bench_train
import common
from embedlab_bidr.contrastive import ContrastiveSettings, train_contrastive_pq

from embedlab.atomic import write_file_atomically
from embedlab.cache import default_cache_dir
from embedlab.index import ExactIndex
from embedlab.persistence import MANIFEST
from embedlab.pq_compressor import PQCompressor
from embedlab.sampling import sample_positions

LOSS = {"name": "infonce", "temperature": 0.05}
#: BiDR's graph: each training query's top 200 candidates, ground truth excluded; one negative per
#: example drawn uniformly among them every epoch.
CANDIDATES = {"count": 1, "start": 0, "depth": 200, "sampling": "uniform"}
RECIPES = ("random-batches", "locality", "progressive")


def recipes(stage1: Path | None) -> dict[str, dict[str, Any]]:
    """The fine-tuning recipes compared (see the module docstring)."""
    zero_shot = {"first_stage": bench_train.MINILM_ONNX, **CANDIDATES}
    out = {"random-batches": {"loss": LOSS, "negatives": {"name": "mined", **zero_shot}},
           "locality": {"loss": LOSS, "negatives": {"name": "locality", **zero_shot, "walk": "random"}}}
    if stage1 is not None:
        trained = {"encoder": bench_train.MINILM_ONNX["encoder"], "index": {"load": str(stage1)}}
        out["progressive"] = {"loss": LOSS, "negatives": {"name": "locality", **CANDIDATES, "first_stage": trained,
                                                          "walk": "random"}}
    return out


def relevant_positions(split: common.EncodedSplit) -> list[list[int]]:
    where = {d: i for i, d in enumerate(split.doc_ids)}
    return [[where[d] for d, g in split.qrels.get(q, {}).items() if g > 0 and d in where] for q in split.query_ids]


def stage1(name: str, args: argparse.Namespace) -> tuple[Path, dict]:
    """Stage 1's trained code tier for ``name``, saved (or reused) in the embedlab cache."""
    dataset = common.load(name)
    train = common.encode_split(dataset, bench_train.SPLITS[name][0])
    settings = {"dataset": dataset.corpus.content_hash, "m": args.m, "seed": args.seed, "lr": args.stage1_lr,
                "train_queries": args.train_queries, "epochs": args.stage1_epochs}
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    path = default_cache_dir() / "bidr-stage1" / f"{name}-m{args.m}-s{args.seed}-{key}"
    record_file = path.with_suffix(".json")
    if (path / MANIFEST).is_file() and record_file.is_file():
        print(f"{name}: stage 1 reused from {path}", flush=True)
        return path, json.loads(record_file.read_text())
    rows = sample_positions(len(train.queries), args.train_queries or len(train.queries), args.seed)
    queries, relevant = train.queries[rows], [relevant_positions(train)[i] for i in rows]
    begin = time.perf_counter()
    start = PQCompressor(m=args.m, opq=True, seed=args.seed, iterations=25).fit(train.docs)
    fit_s = time.perf_counter() - begin
    grid = {}
    for lr in args.stage1_lr:
        pq = copy.deepcopy(start)
        begin = time.perf_counter()
        record = train_contrastive_pq(pq, train.docs, queries, relevant, ContrastiveSettings(
            epochs=args.stage1_epochs, lr=lr, seed=args.seed, num_threads=args.threads, show_progress=False))
        grid[lr] = (pq, record, time.perf_counter() - begin)
        held = record["validation_recall"]
        print(f"{name}: stage 1 lr {lr:g}: held-out training recall@100 {held[0]:.4f} -> {max(held):.4f} "
              f"(epoch {record['best_epoch']}, {grid[lr][2]:.0f} s)", flush=True)
    lr = max(grid, key=lambda r: max(grid[r][1]["validation_recall"]))
    pq, record, seconds = grid[lr]
    index = ExactIndex(metric="ip")
    index.use_compressor(pq)
    index.build(train.docs)
    index.save(path)
    summary = {"path": str(path), **settings, "lr_grid": args.stage1_lr, "lr": lr, "opq_fit_s": fit_s,
               "train_s": seconds,
               "validation_recall": {str(r): grid[r][1]["validation_recall"] for r in grid},
               "best_epoch": record["best_epoch"]}
    write_file_atomically(record_file, json.dumps(summary, indent=1))
    print(f"{name}: stage 1 chosen on held-out training queries: lr {lr:g}; saved {path}", flush=True)
    return path, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact"], choices=["scifact", "python-stdlib"])
    parser.add_argument("--configs", nargs="+", default=list(RECIPES), choices=RECIPES)
    parser.add_argument("--m", type=int, default=32, help="stage 1's code bytes per document")
    parser.add_argument("--stage1-lr", type=float, nargs="+", default=[1e-3, 3e-3])
    parser.add_argument("--stage1-epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--train-queries", type=int, default=640)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for name in args.datasets:
        path, summary = stage1(name, args) if "progressive" in args.configs else (None, {})
        inner = argparse.Namespace(datasets=[name], configs=args.configs, seed=args.seed, threads=args.threads,
                                   train_queries=args.train_queries, set=args.set, held_out_only=False,
                                   versus=["random-batches", "locality"])
        results[name] = {"stage1": summary, **bench_train.quality(inner, recipes(path))}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
