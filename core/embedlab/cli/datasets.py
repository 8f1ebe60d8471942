"""``embedlab datasets [--json]``: registered datasets, the plugin providing each, a description."""

from __future__ import annotations

import argparse
import json

BEIR_HINT = ("BEIR folders (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) need no registration: "
             "[dataset] path = \"<folder>\" in a config, or embedlab.load_dataset(\"beir\", path=...).")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("datasets", help="list registered datasets")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedlab

    specs = [s for s in embedlab.registry().specs() if s.kind == "dataset"]
    rows = [{"name": s.name, "plugin": s.plugin, "distribution": s.distribution, "version": s.version,
             "description": s.description} for s in specs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max([len(r["name"]) for r in rows] + [4])
    for row in rows:
        print(f"{row['name']:<{width}}  {row['distribution']} {row['version']} ({row['plugin']})"
              f"  {row['description']}")
    print(BEIR_HINT)
    return 0
