"""Where the ONNX backends of all-MiniLM-L6-v2 spend their time, per operator type (ONNX Runtime's profiler).

    python benchmarks/profile_onnx_ops.py [--texts 128] [--threads 1] [--corpus scifact|pypi]

Runs the cached fp32 export and its int8 version (the ``onnx`` and ``onnx-int8`` backends) on the
first ``--texts`` texts in length-sorted batches of 32 (as the encoder does), with ONNX Runtime's
profiling on, after one warm-up batch; prints per operator type the milliseconds and the share of
the model's time, the tokenizer's time on the same texts, and the model's total. The int8 model
quantises only the ``MatMul`` nodes (feed-forward and output projections); the fused ``Attention``
nodes (Q/K/V projections, scores, softmax) stay float32.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections import defaultdict

import common
import numpy as np
import onnxruntime as ort
from bench_onnx_vs_torch import load_texts
from embedlab_transformers import MiniLM


def batches(tokenizer, texts: list[str], batch_size: int, names: list[str]) -> list[dict[str, np.ndarray]]:
    """Length-sorted, padded batches of the tokenised ``texts``."""
    encoded = tokenizer(texts, truncation=True, max_length=256, padding=False)
    order = np.argsort([len(ids) for ids in encoded["input_ids"]], kind="stable")
    out = []
    for start in range(0, len(texts), batch_size):
        rows = order[start:start + batch_size]
        width = max(len(encoded["input_ids"][r]) for r in rows)
        batch = {}
        for name in names:
            values = np.zeros((len(rows), width), np.int64)
            for i, r in enumerate(rows):
                values[i, :len(encoded[name][r])] = encoded[name][r]
            batch[name] = values
        out.append(batch)
    return out


def profile(path: str, feeds: list[dict[str, np.ndarray]], threads: int) -> tuple[dict[str, float], float]:
    """Milliseconds per operator type over ``feeds`` (after one warm-up batch), and the wall seconds."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    with tempfile.TemporaryDirectory() as folder:
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        names = [i.name for i in session.get_inputs()]
        session.run(["last_hidden_state"], {n: feeds[-1][n] for n in names})
        start = time.perf_counter()
        for feed in feeds:
            session.run(["last_hidden_state"], {n: feed[n] for n in names})
        wall = time.perf_counter() - start
        with open(session.end_profiling()) as handle:
            events = json.load(handle)
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    warm_up_end_us = runs[1] if len(runs) > 1 else 0
    per_op: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= warm_up_end_us:
            per_op[event["args"]["op_name"]] += event["dur"] / 1000
    return dict(per_op), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--corpus", choices=("scifact", "pypi"), default="scifact")
    parser.add_argument("--backends", nargs="+", default=["onnx", "onnx-int8"])
    args = parser.parse_args()
    common.report_load()
    texts = load_texts(args.corpus, args.texts)
    encoders = {name: MiniLM(backend=name, num_threads=args.threads, show_progress=False)
                for name in dict.fromkeys(["onnx", *args.backends])}
    tokenizer = encoders["onnx"].tokenizer
    start = time.perf_counter()
    tokenizer(texts, truncation=True, max_length=256, padding=False)
    tokenize_s = time.perf_counter() - start
    names = encoders["onnx"].loaded.backend.input_names
    feeds = batches(tokenizer, texts, 32, names)
    tokens = sum(int(f["attention_mask"].sum()) for f in feeds)
    print(f"{len(texts)} {args.corpus} texts ({tokens / len(texts):.0f} tokens on average), batches of 32, "
          f"{args.threads} thread(s); tokenizer {tokenize_s * 1000:.0f} ms")
    for name, encoder in encoders.items():
        per_op, wall = profile(str(encoder.loaded.backend.path), feeds, args.threads)
        total = sum(per_op.values())
        print(f"\n{name}: model {wall * 1000:.0f} ms wall ({len(texts) / wall:.1f} texts/s), operators "
              f"{total:.0f} ms; tokenizer = {tokenize_s / (tokenize_s + wall):.1%} of tokenizer + model")
        print("| operator | ms | share |\n|---|---|---|")
        for op, ms in sorted(per_op.items(), key=lambda item: -item[1]):
            if ms / total >= 0.005:
                print(f"| {op} | {ms:.0f} | {ms / total:.1%} |")


if __name__ == "__main__":
    main()
