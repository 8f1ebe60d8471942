"""The ``embedlab`` command line: one module per subcommand, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Sequence

from embedlab.errors import EmbedlabError

SUBCOMMANDS = ("plugins", "run", "new_plugin", "evaluate", "datasets")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedlab", description="Embedding-based retrieval experiments.")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        import_module(f"embedlab.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``embedlab`` script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import embedlab

        print(f"embedlab {embedlab.__version__} (plugin API {embedlab.API_VERSION})")
        return 0
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EmbedlabError as error:
        print(f"embedlab {args.command}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"embedlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
