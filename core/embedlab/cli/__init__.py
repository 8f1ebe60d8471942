"""The ``embedlab`` command line: one module per subcommand, each with ``register(subparsers)``.

Plugins load lazily: ``embedlab --version`` and the core commands' ``--help`` import no plugin, and a
core command loads plugins only when it needs a component (``embedlab.registry()``). Plugin
subcommands (the ``embedlab_cli`` hook) are added only when the first argument is not a core
command: running one, or ``embedlab`` / ``embedlab --help``, which list them.
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module
from typing import Sequence

from embedlab.errors import EmbedlabError

#: Core subcommand -> module under ``embedlab.cli``.
SUBCOMMANDS = {"plugins": "plugins", "run": "run", "reproduce": "reproduce", "new-plugin": "new_plugin",
               "evaluate": "evaluate", "datasets": "datasets", "claims": "claims"}


def build_parser(*, plugin_commands: bool = True) -> argparse.ArgumentParser:
    """The argument parser; with ``plugin_commands`` also the subcommands that plugins add."""
    parser = argparse.ArgumentParser(
        prog="embedlab", description="Embedding-based retrieval experiments.",
        epilog="Plugins may add commands; they are listed above when installed and loaded "
               "(`embedlab plugins` shows every plugin and its load errors).")
    parser.add_argument("--version", action="store_true", help="print versions and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        import_module(f"embedlab.cli.{module}").register(subparsers)
    if plugin_commands:
        _add_plugin_commands(subparsers)
    return parser


def needs_plugin_commands(argv: Sequence[str]) -> bool:
    """Whether parsing ``argv`` needs the plugins' subcommands: not for ``--version`` nor for a core
    command (its own ``--help`` included); yes for any other command and for the top-level help."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None:
        return first not in SUBCOMMANDS
    return not argv or any(a in ("-h", "--help") for a in argv) or "--version" not in argv


def _add_plugin_commands(subparsers: argparse._SubParsersAction) -> None:
    """Subcommands contributed by plugins through the ``embedlab_cli`` hook, one plugin at a time:
    a failing hook (``sys.exit`` included) is reported on stderr and the other commands stay."""
    import embedlab

    manager = embedlab.plugin_host().manager
    for impl in manager.hook.embedlab_cli.get_hookimpls():
        try:
            impl.function(subparsers=subparsers)
        except BaseException as error:  # noqa: BLE001 - one plugin must not break the CLI
            if isinstance(error, KeyboardInterrupt):
                raise
            distribution, _, name = impl.plugin_name.rpartition(":")
            print(f"embedlab: plugin {name!r} ({distribution or name}) failed to add its commands: "
                  f"{type(error).__name__}: {error}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``embedlab`` script; returns the exit status. Ctrl-C anywhere (plugins
    loading, a command running) prints one line and exits 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print(f"embedlab{f' {command}' if command else ''}: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    parser = build_parser(plugin_commands=needs_plugin_commands(argv))
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


if __name__ == "__main__":
    sys.exit(main())
