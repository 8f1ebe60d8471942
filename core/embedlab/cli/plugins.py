"""``embedlab plugins [--json] [--strict]``: installed plugins, their components, load errors and
component names that several plugins provide."""

from __future__ import annotations

import argparse
import json
import sys

from embedlab.plugins import PluginInfo


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins", help="list installed plugins and load errors",
        description="List every installed plugin, its components and its load error, and the component "
                    "names that several plugins provide (use DISTRIBUTION:NAME to pick one).")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 1 when a plugin failed or is incompatible, or a component "
                             "name is ambiguous (for CI)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import embedlab

    host = embedlab.plugin_host()
    clashes = {(c[0].kind, c[0].name): c for c in host.registry.clashes()}

    def ambiguous(plugin: PluginInfo) -> dict[str, list[str]]:
        found = {kind: [n for n in names if (kind, n) in clashes] for kind, names in plugin.components.items()}
        return {kind: names for kind, names in found.items() if names}

    if args.json:
        print(json.dumps([{**p.to_json(), "ambiguous": ambiguous(p)} for p in host.plugins], indent=2))
    else:
        for plugin in host.plugins:
            print(f"{plugin.name:<16} {plugin.distribution} {plugin.version}  [{plugin.status}]")
            if plugin.kinds:
                print(f"    declares   kind(s) {', '.join(plugin.kinds)}")
            for kind, names in sorted(plugin.components.items()):
                print(f"    {kind:<11} {', '.join(names)}")
            for kind, names in sorted(ambiguous(plugin).items()):
                for name in names:
                    others = [p.distribution for p in clashes[(kind, name)]
                              if (p.plugin, p.distribution) != (plugin.name, plugin.distribution)]
                    print(f"    ambiguous  {kind} {name!r} is also provided by {', '.join(others)}: "
                          f"write {plugin.distribution}:{name}")
            if plugin.error:
                print(f"    error: {plugin.error}")
    problems = host.problems()
    if args.strict and problems:
        print(f"embedlab plugins --strict: {len(problems)} problem(s):", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0

