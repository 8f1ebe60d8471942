"""Command-line options every free-embedding experiment shares (LIMIT's critical n, margin's
minimum dimension): relevance pattern, seed, optimiser and stopping rules, output and progress."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from embedlab_limit.free_embedding import OptimiserConfig


def add_experiment_options(parser: argparse.ArgumentParser, *, max_steps: int, output: Path, written: str,
                           checked: str) -> None:
    """Add ``--k --seed --learning-rate --max-steps --patience --eval-every --output --quiet``.

    ``written`` names the files the experiment writes into ``--output``; ``checked`` what is
    evaluated every ``--eval-every`` steps."""
    parser.add_argument("--k", type=int, default=2, help="relevant documents per query (default 2)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the initial vectors (default 42)")
    parser.add_argument("--learning-rate", type=float, default=0.01, help="Adam learning rate (default 0.01)")
    parser.add_argument("--max-steps", type=int, default=max_steps, help=f"step limit per run (default {max_steps})")
    parser.add_argument("--patience", type=int, default=1000, help="plateau patience in steps (default 1000)")
    parser.add_argument("--eval-every", type=int, default=50, help=f"steps between {checked} checks (default 50)")
    parser.add_argument("--output", "-o", type=Path, default=output, help=f"folder for {written} (default {output})")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")


def optimiser_config(args: argparse.Namespace, **extra: Any) -> OptimiserConfig:
    """The optimiser settings given by :func:`add_experiment_options`' options (plus ``extra``)."""
    return OptimiserConfig(learning_rate=args.learning_rate, max_steps=args.max_steps, eval_every=args.eval_every,
                           patience=args.patience, **extra)
