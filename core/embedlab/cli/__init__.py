"""The ``embedlab`` command line: one module per subcommand, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Sequence

from embedlab.errors import EmbedlabError

SUBCOMMANDS = ("plugins", "run", "new_plugin", "evaluate", "datasets", "claims")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="embedlab", description="Embedding-based retrieval experiments.")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        import_module(f"embedlab.cli.{name}").register(subparsers)
    _add_plugin_commands(subparsers)
    return parser


def _add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
    """Subcommands contributed by plugins through the ``embedlab_cli`` hook, one plugin at a time:
    a failing hook is reported on stderr and the other commands stay available."""
    import embedlab

    manager = embedlab.plugin_host().manager
    for impl in manager.hook.embedlab_cli.get_hookimpls():
        try:
            impl.function(subparsers=subparsers)
        except Exception as error:  # noqa: BLE001 - one plugin must not break the CLI
            print(f"embedlab: plugin {impl.plugin_name!r} failed to add its commands: {error}",
                  file=sys.stderr)


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
