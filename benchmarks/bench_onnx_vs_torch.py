"""Throughput of the ``transformers`` encoder: ONNX Runtime, OpenVINO and torch-bf16 backends vs torch fp32.

    python benchmarks/bench_onnx_vs_torch.py [--texts 1000] [--threads 2] [--batch-size 32] [--rounds 2]
    python benchmarks/bench_onnx_vs_torch.py --corpus pypi --threads 1     # short texts
    python benchmarks/bench_onnx_vs_torch.py --texts 300 --threads 1 --rounds 3 --backends torch-bf16 openvino-int8

Any names of ``embedlab_transformers.backends.BACKENDS`` go in ``--backends``; ``torch-bf16`` (torch's own
bfloat16 autocast) is the control that says how much of a bfloat16 backend's speed is bfloat16 alone.

Encodes the first ``--texts`` SciFact abstracts (title + text, all-MiniLM-L6-v2, max_length 256,
length-sorted batches) with both backends at the same thread count. Rounds alternate which
backend goes first, so that load from other jobs on the machine hits all alike; the table gives
texts/s per round, the median, the ratio to torch and the cosine to torch's vectors. The tokenizer's
share is timed alone (the same tokenisation every backend does). The one-time ONNX export and int8
quantisation (cached in ``$EMBEDLAB_CACHE_DIR/onnx``) happen before timing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from pathlib import Path

import common
import numpy as np
from embedlab_transformers import MiniLM, openvino_backend

from embedlab.datasets.beir import load_beir

SCIFACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "scifact" / "beir"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx", "onnx-int8"])
    parser.add_argument("--corpus", choices=("scifact", "pypi"), default="scifact")
    parser.add_argument("--no-bf16", action="store_true",
                        help="the OpenVINO backends compute in float32, as on a CPU without bfloat16 (this CPU's "
                             "BF16 capability is hidden from them; torch-bf16 is unaffected)")
    args = parser.parse_args()
    common.report_load()
    if args.no_bf16:
        openvino_backend.cpu_capabilities = lambda: frozenset({"FP32", "INT8"})
        print(f"OpenVINO backends compute in {openvino_backend.effective_precision('bf16')} (--no-bf16)")
    texts = load_texts(args.corpus, args.texts)
    params = dict(num_threads=args.threads, batch_size=args.batch_size, show_progress=False)
    encoders = {name: MiniLM(backend=name, **params) for name in dict.fromkeys(["torch", *args.backends])}
    for name, encoder in encoders.items():
        start = time.perf_counter()
        encoder.loaded  # noqa: B018 - export / quantise (or find the cached files) before timing
        print(f"{name} ready in {time.perf_counter() - start:.1f} s")
    tokenizer = encoders["torch"].tokenizer
    start = time.perf_counter()
    tokenizer(texts, truncation=True, max_length=256, padding=False)
    tokenize_s = time.perf_counter() - start
    for encoder in encoders.values():  # warm-up: load weights, allocate
        encoder.encode_documents(texts[:args.batch_size])
    speed, outputs, load = timed_rounds(encoders, texts, args.rounds)
    print(f"\n{len(texts)} {args.corpus} texts, max_length 256, batch {args.batch_size}, "
          f"{args.threads} thread(s), load average during the run {min(load):.1f}-{max(load):.1f}; "
          f"tokenizer alone {len(texts) / tokenize_s:.0f} texts/s")
    print(f"| backend | {' | '.join(f'round {i + 1} texts/s' for i in range(args.rounds))} | median texts/s "
          "| ratio to torch (paired median) | cosine to torch mean / min |")
    print(f"|---|{'---|' * args.rounds}---|---|---|")
    for name, values in speed.items():
        ratio = statistics.median(v / t for v, t in zip(values, speed["torch"]))
        cosine = (outputs["torch"] * outputs[name]).sum(axis=1)
        print(f"| {name} | {' | '.join(f'{v:.1f}' for v in values)} | {statistics.median(values):.1f} | "
              f"{ratio:.2f}x | {cosine.mean():.5f} / {cosine.min():.5f} |")


def timed_rounds(encoders: dict[str, MiniLM], texts: list[str], rounds: int
                 ) -> tuple[dict[str, list[float]], dict[str, np.ndarray], list[float]]:
    """Encode ``texts`` with every encoder per round, alternating the order (paired rounds).

    Returns texts/s per round for each encoder, each encoder's last vectors, and the load averages
    read before the first round and after each round.
    """
    speed: dict[str, list[float]] = {name: [] for name in encoders}
    outputs: dict[str, np.ndarray] = {}
    load = [os.getloadavg()[0]]
    for round_ in range(rounds):
        for name in (list(encoders) if round_ % 2 == 0 else list(encoders)[::-1]):
            start = time.perf_counter()
            outputs[name] = encoders[name].encode_documents(texts)
            speed[name].append(len(texts) / (time.perf_counter() - start))
        load.append(os.getloadavg()[0])
    return speed, outputs, load


def load_texts(corpus: str, n: int) -> list[str]:
    if corpus == "scifact":
        return load_beir(SCIFACT).corpus.documents()[:n]
    with gzip.open(SCIFACT.parents[1] / "pypi-summaries" / "pypi-summaries.tsv.gz", "rt", encoding="utf-8") as handle:
        column = handle.readline().rstrip("\n").split("\t").index("summary")
        return [line.rstrip("\n").split("\t")[column] for _, line in zip(range(n), handle)]


if __name__ == "__main__":
    main()
