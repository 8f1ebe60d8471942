"""``embedlab claims``: the headline claims of the core and every installed plugin, with their status."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "claims", help="list the papers' claims each plugin reproduces (or not), with the commands",
        description="Each plugin ships a claims.toml: the paper's number and setting, ours, the data, the "
                    "command that reproduces it and a status (reproduced / partly / not reproduced / not tested).")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine-readable output")
    output.add_argument("--markdown", action="store_true", help="the headline table of docs/benchmarks.md")
    parser.add_argument("--plugin", action="append", default=[], metavar="NAME", help="only this plugin (repeatable)")
    parser.add_argument("--status", action="append", default=[], metavar="STATUS",
                        help="only claims with this status (repeatable)")
    parser.add_argument("--headline", action="store_true", help="only the claims of the docs' headline table")
    parser.add_argument("--write", type=Path, metavar="FILE",
                        help="with --markdown: replace the generated block of FILE instead of printing")
    parser.add_argument("--check", action="store_true",
                        help="also parse every command (without running it) against the repository at --root; "
                             "exit status 1 if a claims file or a command is broken")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root for --check (default: .)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from embedlab import claims as claims_module

    sources = claims_module.installed_claims()
    if args.plugin:
        known = {s.plugin for s in sources}
        unknown = sorted(set(args.plugin) - known)
        if unknown:
            raise claims_module.ClaimsError(f"no installed plugin named {', '.join(unknown)}; "
                                            f"installed: {', '.join(sorted(known))}")
        sources = [s for s in sources if s.plugin in set(args.plugin)]
    selected = claims_module.select(sources, args.plugin, args.status, args.headline or args.markdown)
    if args.write and not args.markdown:
        raise claims_module.ClaimsError("--write needs --markdown")
    if args.json:
        print(json.dumps({"sources": [{"plugin": s.plugin, "distribution": s.distribution, "version": s.version,
                                       "path": s.path, "error": s.error} for s in sources],
                          "claims": [c.to_json() for c in selected]}, indent=2))
    elif args.markdown:
        table = claims_module.render_markdown(selected)
        if args.write:
            text = args.write.read_text(encoding="utf-8")
            args.write.write_text(claims_module.replace_generated(text, table), encoding="utf-8")
            print(f"wrote {len(selected)} claims into {args.write}", file=sys.stderr)
        else:
            print(table, end="")
    else:
        print(claims_module.render_text(sources, selected))
        tally = ", ".join(f"{n} {status}" for status, n in claims_module.counts(selected).items())
        print(f"\n{len(selected)} claims: {tally}")
    broken = [s for s in sources if s.error]
    if not args.check:
        return 0
    from embedlab.claim_commands import check_claims

    errors = check_claims(selected, args.root)
    for source in broken:
        print(f"claims file of {source.plugin}: {source.error}", file=sys.stderr)
    for where, error in errors.items():
        print(f"{where}: {error}", file=sys.stderr)
    checked = len(selected) - len(errors)
    print(f"checked {len(selected)} commands: {checked} parse, {len(errors)} broken; "
          f"{len(broken)} plugin(s) without a readable claims file", file=sys.stderr)
    return 1 if errors or broken else 0
