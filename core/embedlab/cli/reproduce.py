"""``embedlab reproduce DIR``: re-run the run manifest of an ``--output`` directory and compare."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("reproduce", help="re-run an --output directory's manifest.json and say "
                                   "whether every number matches (exit 1 if not)")
    parser.add_argument("directory", type=Path, help="an --output directory of `embedlab run`")
    parser.add_argument("--tolerance", type=float, default=1e-9,
                        help="largest absolute difference of an aggregate that still matches (default 1e-9)")
    parser.add_argument("--no-cache", action="store_true", help="recompute every embedding")
    parser.add_argument("--cache-dir", type=Path, help="embedding cache directory")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedlab.cache import EmbeddingCache
    from embedlab.manifest import reproduce

    cache = None
    if not args.no_cache:
        cache = EmbeddingCache(args.cache_dir / "embeddings") if args.cache_dir else EmbeddingCache()
    ok, lines = reproduce(args.directory, tolerance=args.tolerance, cache=cache, progress=not args.quiet)
    print("\n".join(lines))
    return 0 if ok else 1
