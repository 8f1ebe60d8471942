"""``embedlab new-plugin NAME [--kind KIND] [--output DIR]``: start a plugin project from the template."""

from __future__ import annotations

import argparse
from pathlib import Path

from embedlab.scaffold import KIND_FACTORIES, PluginNames, render_plugin


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "new-plugin", help="create a plugin project from the template",
        description="Create a working plugin project (example component, tests, entry point). "
                    "Without --output it goes to ./embedlab-NAME; with --output DIR to DIR/NAME "
                    "(e.g. --output plugins inside the embedlab repository).")
    parser.add_argument("name", metavar="NAME",
                        help="plugin name: lowercase letters, digits, '-' or '_' (e.g. my-method)")
    parser.add_argument("--output", metavar="DIR", type=Path,
                        help="parent directory; the project is created as DIR/NAME")
    parser.add_argument("--kind", choices=list(KIND_FACTORIES), default="compressor",
                        help="the kind of the example component (default: compressor)")
    parser.set_defaults(func=run)


def destination(name: str, output: Path | None) -> Path:
    """``DIR/NAME`` with ``--output DIR``, else ``./embedlab-NAME``."""
    if output is None:
        return Path(PluginNames.from_name(name).distribution)
    return output / name


def run(args: argparse.Namespace) -> int:
    names = PluginNames.from_name(args.name)
    target = render_plugin(args.name, destination(args.name, args.output), kind=args.kind)
    print(f"Created {names.distribution} in {target}\n\n"
          "Next steps:\n"
          f"  cd {target}\n"
          '  pip install -e ".[test]"\n'
          "  pytest                  # the example tests pass as generated\n"
          f"  embedlab plugins        # lists {names.name} as [loaded]\n\n"
          f"Then replace the example {args.kind} in src/{names.module}/{args.kind}.py "
          "(README.md lists what to edit).")
    return 0
