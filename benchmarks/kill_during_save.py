"""Kill -9 saves of composite states and count what loads afterwards (old, new, unloadable, mixed).

Each trial saves version 1 of a component, starts saving version 2 over it in a forked child and
kills the child, at a random time within one save's duration (``--mode timed``) or before a
file-system step spread evenly over the save (``--mode steps``); then loads the path and searches.

    python benchmarks/kill_during_save.py --component exact-pq --kills 30
    python benchmarks/kill_during_save.py --component bidr --kills 30 --mode steps

To measure an older embedlab, put its core (and plugin sources) first on PYTHONPATH; the harness is
read from this checkout's ``core/embedlab/crashtest.py``, so it works with versions without it.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parents[1]


def _harness():
    spec = importlib.util.spec_from_file_location("crashtest_harness", HERE / "core" / "embedlab" / "crashtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exact_pq(version: int):
    from embedlab.index import ExactIndex
    from embedlab.pq_compressor import PQCompressor

    x = np.random.default_rng(version).standard_normal((100_000, 64)).astype(np.float32)
    index = ExactIndex(metric="l2")
    index.use_compressor(PQCompressor(m=16, ksub=64, iterations=4, seed=version).fit(x[:5000]))
    index.build(x)
    return index


def bidr(version: int):
    from embedlab_bidr import BiDRIndex

    x = np.random.default_rng(version).standard_normal((100_000, 64)).astype(np.float32)
    index = BiDRIndex(m=16, ksub=64, kmeans_iterations=4, train_size=5000, seed=version)
    index.build(x)
    return index


QUERIES = np.random.default_rng(99).standard_normal((5, 64)).astype(np.float32)


def probe(index) -> np.ndarray:
    result = index.search(QUERIES, 5)
    return np.concatenate([result.indices.ravel(), result.scores.ravel().view(np.int32)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--component", choices=("exact-pq", "bidr"), default="exact-pq")
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--mode", choices=("timed", "steps"), default="timed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    harness = _harness()
    build = {"exact-pq": exact_pq, "bidr": bidr}[args.component]
    with tempfile.TemporaryDirectory(prefix="kill-during-save-") as tmp:
        directory = Path(tmp)
        old, new = build(1), build(2)
        old.save(directory / "timing")
        start = time.perf_counter()
        new.save(directory / "timing")
        seconds = time.perf_counter() - start
        if args.mode == "timed":
            rng = random.Random(args.seed)
            counts = harness.survey(build, probe, directory / "runs",
                                    delays=[rng.uniform(0, seconds) for _ in range(args.kills)])
        else:
            old.save(directory / "count")
            steps = harness.count_steps(new, directory / "count")
            counts = harness.survey(build, probe, directory / "runs", harness.kill_points(steps, args.kills))
        size = sum(f.stat().st_size for f in (directory / "runs").rglob("*") if f.is_file())
        for state in (directory / "runs").glob("state-*"):  # the next save of every path
            try:
                old.save(state)
            except Exception as error:  # an older embedlab may fail here: count it  # noqa: BLE001
                print(f"  re-saving {state.name} failed: {type(error).__name__}: {error}")
        kept = [p for p in (directory / "runs").iterdir() if p.name.startswith(".")]
    import embedlab

    print(f"{args.component}, {args.mode} kills over a {seconds:.2f} s save (embedlab at "
          f"{Path(embedlab.__file__).parent}, EMBEDLAB_FSYNC={os.environ.get('EMBEDLAB_FSYNC', '1')}):")
    print(f"  unloadable {counts['unloadable']} of {args.kills}, mixed {counts['mixed']}, old {counts['old']}, "
          f"new {counts['new']}; {counts['killed']} saves killed; {counts['temporaries']} temporaries left "
          f"({size / 2**20:.0f} MiB in the directory), {len(kept)} after the next save of every path")


if __name__ == "__main__":
    main()
