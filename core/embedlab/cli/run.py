"""``embedlab run CONFIG.toml [--output DIR] [--no-cache]``: run an experiment and print its table."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run the pipelines of an experiment TOML file")
    parser.add_argument("config", type=Path, help="experiment TOML file")
    parser.add_argument("--output", "-o", type=Path, help="write results.json, results.csv and TREC runs here")
    parser.add_argument("--report", type=Path, help="write a self-contained HTML page (table, per-query "
                        "plots against the baseline, latency/bytes vs quality, the run manifest)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    parser.add_argument("--cache-dir", type=Path, help="embedding cache directory "
                        "(default: $EMBEDLAB_CACHE_DIR or ~/.cache/embedlab)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedlab.experiment.api import run as run_experiment

    def warn(line: str) -> None:
        print(f"embedlab run: warning: {line}", file=sys.stderr)

    completed = run_experiment(args.config, output=args.output, report=args.report,
                               cache=False if args.no_cache else (args.cache_dir or True),
                               progress=not args.quiet, warn=warn)
    print(completed.table)
    for path in completed.written:
        print(f"wrote {path}")
    return 0
