"""``embedlab run CONFIG.toml [--output DIR] [--no-cache]``: run an experiment and print its table.

Exit status: 0 when every pipeline ran, 1 on an error before any ran (a bad file, component or
``--output``) or when some pipeline failed (the others' results are still printed and written), 130
on Ctrl-C."""

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
    if completed.table:
        print(completed.table)
    for path in completed.written:
        print(f"wrote {path}")
    failures = getattr(completed.result, "failures", [])
    for failure in failures:
        print(f"embedlab run: error: {failure}", file=sys.stderr)
    return 1 if failures else 0
