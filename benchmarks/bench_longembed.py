"""LongEmbed's synthetic tasks on all-MiniLM-L6-v2: Acc@1 (= nDCG@1) per length and method.

    python benchmarks/bench_longembed.py --tasks passkey needle --lengths 256 512 1024 2048 \
        --methods truncate pcw gp rp pi --original 256 --target 2048 --json /tmp/longembed.json

Per (task, length): 100 documents and 50 queries (the paper's sizes); each method is an
``embedlab_longembed`` encoder run through an ordinary ``embedlab.Pipeline`` with the shared
embedding cache, so a rerun only encodes what changed. Prints one table per task. With ``--json``
every finished (task, length, method) is written at once and skipped by a rerun with the same file,
so a run killed by a time limit resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import time

from embedlab_longembed import METHODS, needle, passkey

import embedlab
from embedlab.atomic import write_file_atomically
from embedlab.cache import EmbeddingCache
from embedlab.metrics import evaluate

TASKS = {"passkey": passkey, "needle": needle}


def run(task: str, length: int, method: str, original: int, target: int, seed: int, threads: int,
        documents: int = 100, queries: int = 50) -> dict:
    data = TASKS[task](length, documents=documents, queries=queries, seed=seed)
    split = data.split("test")
    encoder = {"name": "longembed", "method": method, "original_length": original, "target_length": target,
               "num_threads": threads, "show_progress": False}
    pipeline = embedlab.Pipeline.from_names(encoder=encoder, cache=EmbeddingCache())
    start = time.perf_counter()
    pipeline.build(data.corpus)
    ranking = pipeline.search(split.queries, 10)
    scores = evaluate(ranking, split.qrels, ["nDCG@1", "nDCG@10"])
    return {"task": task, "length": length, "method": method, "acc@1": scores["nDCG@1"],
            "nDCG@10": scores["nDCG@10"], "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), default=["passkey", "needle"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[256, 512, 1024, 2048])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--original", type=int, default=256, help="the window the model was used with")
    parser.add_argument("--target", type=int, default=2048, help="the longest input read")
    parser.add_argument("--documents", type=int, default=100, help="per length (the paper: 100)")
    parser.add_argument("--queries", type=int, default=50, help="per length (the paper: 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="write every row here")
    args = parser.parse_args()
    done = _load(args.json)
    for task in args.tasks:
        print(f"\n{task}: Acc@1 (original window {args.original}, target {args.target})")
        print("length  " + "  ".join(f"{m:>8}" for m in args.methods))
        for length in args.lengths:
            found = []
            for method in args.methods:
                key = (task, length, method, args.original, args.target, args.seed)
                row = done.get(key) or run(task, length, method, args.original, args.target, args.seed,
                                           args.threads, args.documents, args.queries)
                row.update(original=args.original, target=args.target, seed=args.seed)
                found.append(row)
                done[key] = row
                print(f"  {task} {length} {method}: acc@1 {row['acc@1']:.2f} ({row['seconds']} s)", flush=True)
                _save(args.json, done)
            print(f"{length:>6}  " + "  ".join(f"{r['acc@1']:>8.2f}" for r in found), flush=True)


def _key(row: dict) -> tuple:
    return (row["task"], row["length"], row["method"], row.get("original"), row.get("target"), row.get("seed"))


def _load(path: str | None) -> dict:
    """Rows already measured (``--json`` of an earlier, possibly killed, run): they are not rerun."""
    try:
        with open(path or "", encoding="utf-8") as source:
            return {_key(row): row for row in json.load(source)}
    except FileNotFoundError:
        return {}


def _save(path: str | None, done: dict) -> None:
    """Rewrite ``path`` after every (task, length, method), atomically, so a killed run resumes."""
    if path:
        write_file_atomically(path, json.dumps(list(done.values()), indent=1))

if __name__ == "__main__":
    main()
