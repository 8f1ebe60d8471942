"""Start-up cost of the ``embedlab`` command: wall time and what it imports.

Runs each command ``--repeat`` times in fresh interpreters (``python -X importtime -m embedlab.cli
...``) and prints the median wall time, the number of modules imported, and whether torch or any
plugin module (``embedlab_*``) was imported. ``--core DIR`` puts another checkout's ``core/`` first
on ``PYTHONPATH``, so a baseline commit and the working tree are measured in the same run::

    git worktree add --detach /tmp/base <commit>
    python benchmarks/bench_cli_startup.py --core /tmp/base/core --core core

Speed rows are only comparable within one run (same machine, same load); the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (("--version",), ("run", "--help"), ("plugins", "--json"), ("--help",))


def measure(core: Path | None, command: tuple[str, ...]) -> tuple[float, int, bool, int]:
    """(seconds, modules imported, torch imported, plugin modules imported) of one run."""
    env = dict(os.environ)
    if core is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(core.resolve()), *filter(None, [env.get("PYTHONPATH")])])
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "embedlab.cli", *command], env=env,
                          capture_output=True, text=True)
    seconds = time.perf_counter() - start
    modules = [line.split("|")[-1].strip() for line in done.stderr.splitlines()
               if line.startswith("import time:") and not line.rstrip().endswith("package")]
    return (seconds, len(modules), any(m == "torch" for m in modules),
            sum(m.startswith("embedlab_") for m in modules))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", action="append", type=Path, help="a checkout's core/ directory (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| core | command | median s | modules | torch | plugin modules |")
    print("|---|---|---|---|---|---|")
    cores = args.core or [None]
    for command in COMMANDS:
        runs: dict[Path | None, list] = {core: [] for core in cores}
        for _ in range(args.repeat):  # alternated, so that load changes hit every core alike
            for core in cores:
                runs[core].append(measure(core, command))
        for core in cores:
            seconds = statistics.median(r[0] for r in runs[core])
            _, modules, torch, plugins = runs[core][-1]
            print(f"| {core or 'installed'} | embedlab {' '.join(command)} | {seconds:.2f} | {modules} | "
                  f"{'yes' if torch else 'no'} | {plugins} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
