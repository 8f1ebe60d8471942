"""Throughput of the ``transformers`` encoder: ONNX Runtime backend vs torch, same process.

    python benchmarks/bench_onnx_vs_torch.py [--texts 1000] [--threads 2] [--batch-size 32] [--rounds 2]

Encodes the first ``--texts`` SciFact abstracts (title + text, all-MiniLM-L6-v2, max_length 256,
length-sorted batches) with both backends at the same thread count. Rounds alternate which
backend goes first, so that load from other jobs on the machine hits both alike; the table gives
texts/s per round, the median, and the ONNX/torch ratio. The one-time ONNX export (cached in
``$EMBEDLAB_CACHE_DIR/onnx``) happens before timing and is reported separately.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import common
import numpy as np
from embedlab_transformers import MiniLM

from embedlab.datasets.beir import load_beir

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "beir"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    common.report_load()
    texts = load_beir(SCIFACT).corpus.documents()[:args.texts]
    params = dict(num_threads=args.threads, batch_size=args.batch_size, show_progress=False)
    encoders = {"torch": MiniLM(backend="torch", **params), "onnx": MiniLM(backend="onnx", **params)}
    start = time.perf_counter()
    encoders["onnx"].loaded  # noqa: B018 - export (or find the cached export) before timing
    print(f"ONNX model ready in {time.perf_counter() - start:.1f} s: {encoders['onnx'].loaded.backend.path}")
    for encoder in encoders.values():  # warm-up: load weights, allocate
        encoder.encode_documents(texts[:args.batch_size])
    speed: dict[str, list[float]] = {name: [] for name in encoders}
    outputs: dict[str, np.ndarray] = {}
    load = [os.getloadavg()[0]]
    for round_ in range(args.rounds):
        for name in (list(encoders) if round_ % 2 == 0 else list(encoders)[::-1]):
            start = time.perf_counter()
            outputs[name] = encoders[name].encode_documents(texts)
            speed[name].append(len(texts) / (time.perf_counter() - start))
        load.append(os.getloadavg()[0])
    cosine = float((outputs["torch"] * outputs["onnx"]).sum(axis=1).min())
    print(f"\n{len(texts)} SciFact abstracts, max_length 256, batch {args.batch_size}, "
          f"{args.threads} thread(s), load average during the run {min(load):.1f}-{max(load):.1f}")
    print(f"| backend | {' | '.join(f'round {i + 1} texts/s' for i in range(args.rounds))} | median texts/s | ratio |")
    print(f"|---|{'---|' * args.rounds}---|---|")
    base = statistics.median(speed["torch"])
    for name, values in speed.items():
        median = statistics.median(values)
        print(f"| {name} | {' | '.join(f'{v:.1f}' for v in values)} | {median:.1f} | {median / base:.2f}x |")
    ratios = [o / t for o, t in zip(speed["onnx"], speed["torch"])]
    print(f"\nONNX/torch per round: {', '.join(f'{r:.2f}x' for r in ratios)}; "
          f"min cosine(torch, onnx) = {cosine:.7f}")


if __name__ == "__main__":
    main()
