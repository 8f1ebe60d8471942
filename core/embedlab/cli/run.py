"""``embedlab run CONFIG.toml [--output DIR] [--no-cache]``: run an experiment and print its table."""

from __future__ import annotations

import argparse
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
    from embedlab.cache import EmbeddingCache
    from embedlab.cli.plugins import warn_about_plugins
    from embedlab.experiment import load_config
    from embedlab.experiment.report import format_table, write_outputs
    from embedlab.experiment.runner import run_experiment

    config = load_config(args.config)
    warn_about_plugins("run")
    if config.task == "node-classification":
        from embedlab.experiment.runner import run_classification_experiment

        outcome = run_classification_experiment(config, progress=not args.quiet)
        print(outcome.format_table())
        for path in outcome.write_outputs(args.output) if args.output else []:
            print(f"wrote {path}")
        return 0
    cache = None
    if not args.no_cache:
        cache = EmbeddingCache(args.cache_dir / "embeddings") if args.cache_dir else EmbeddingCache()
    result = run_experiment(config, cache=cache, progress=not args.quiet)
    print(format_table(result))
    if args.output:
        for path in write_outputs(result, args.output):
            print(f"wrote {path}")
    if args.report:
        from embedlab.experiment.html import write_report

        print(f"wrote {write_report(result, args.report)}")
    return 0
