"""``embedlab plugins [--json]``: installed plugins, their components and load errors."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("plugins", help="list installed plugins and load errors")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedlab

    host = embedlab.plugin_host()
    if args.json:
        print(json.dumps([p.to_json() for p in host.plugins], indent=2))
        return 0
    for plugin in host.plugins:
        print(f"{plugin.name:<16} {plugin.distribution} {plugin.version}  [{plugin.status}]")
        if plugin.kinds:
            print(f"    declares   kind(s) {', '.join(plugin.kinds)}")
        for kind, names in sorted(plugin.components.items()):
            print(f"    {kind:<11} {', '.join(names)}")
        if plugin.error:
            print(f"    error: {plugin.error}")
    return 0
