"""Experiment: also quantise the Q/K/V projections of all-MiniLM-L6-v2 (fp32 inside the fused Attention).

    python benchmarks/try_int8_qkv.py [--texts 128] [--threads 1] [--rounds 2] [--corpus scifact|pypi]

The shipped ``onnx-int8`` backend quantises the ``MatMul`` nodes only; ONNX Runtime's profiler
(``benchmarks/profile_onnx_ops.py``) shows the fused fp32 ``Attention`` nodes then take half of
its time on 256-token abstracts, and their Q/K/V projection is 3 of the layer's 12 weight
multiply-adds per token. Quantising ``Attention`` itself (``QAttention``) is per tensor only and drops
the mean cosine to fp32 to 0.937. This script rewrites each fused ``Attention`` of the cached fp32
export into ``MatMul`` (the concatenated Q/K/V weights) + ``Split`` + ``MultiHeadAttention`` (same
bias, same attention mask bias, fp32 scores and softmax), checks that the rewritten fp32 graph gives
the original's vectors, quantises it with the shipped recipe (int8 weights per output channel on
every ``MatMul`` with a constant weight), and times it against the shipped ``onnx-int8`` and
``onnx`` fp32 on the same length-sorted batches (rounds alternate the order), with the cosine of
each to fp32. Nothing here is used by the encoder: it measures whether the change is worth shipping.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import common
import numpy as np
import onnx
import onnxruntime as ort
from bench_onnx_vs_torch import load_texts, timed_rounds
from embedlab_transformers import MiniLM
from onnx import helper, numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic


def split_attention(source: Path, target: Path) -> int:
    """Rewrite every fused ``Attention`` whose weight is a ``Concat`` of constant matrices into
    MatMul + Split + MultiHeadAttention; returns how many were rewritten."""
    model = onnx.load(str(source))
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    nodes, rewritten = [], 0
    for node in graph.node:
        concat = producer.get(node.input[1]) if node.op_type == "Attention" else None
        if concat is None or concat.op_type != "Concat" or not all(i in constants for i in concat.input):
            nodes.append(node)
            continue
        heads = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "num_heads")
        weight = np.concatenate([numpy_helper.to_array(constants[i]) for i in concat.input], axis=1)
        hidden = weight.shape[1] // 3
        prefix = f"{node.name}_split"
        graph.initializer.extend([numpy_helper.from_array(weight, f"{prefix}_w"),
                                  numpy_helper.from_array(np.array([hidden] * 3, np.int64), f"{prefix}_sizes")])
        nodes += [helper.make_node("MatMul", [node.input[0], f"{prefix}_w"], [f"{prefix}_qkv"],
                                   name=f"{prefix}_matmul"),
                  helper.make_node("Split", [f"{prefix}_qkv", f"{prefix}_sizes"],
                                   [f"{prefix}_q", f"{prefix}_k", f"{prefix}_v"], axis=2, name=f"{prefix}_split"),
                  helper.make_node("MultiHeadAttention",
                                   [f"{prefix}_q", f"{prefix}_k", f"{prefix}_v", node.input[2], "", node.input[5]],
                                   list(node.output[:1]), domain="com.microsoft", num_heads=heads,
                                   name=f"{prefix}_mha")]
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.save(model, str(target))
    return rewritten


def session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--corpus", choices=("scifact", "pypi"), default="scifact")
    args = parser.parse_args()
    common.report_load()
    texts = load_texts(args.corpus, args.texts)
    encoders = {name: MiniLM(backend=backend, num_threads=args.threads, show_progress=False)
                for name, backend in (("onnx", "onnx"), ("onnx-int8", "onnx-int8"), ("int8-qkv", "onnx-int8"))}
    fp32_path = encoders["onnx"].loaded.backend.path
    with tempfile.TemporaryDirectory() as folder:
        split_path, qkv_path = Path(folder, "split.onnx"), Path(folder, "split-int8.onnx")
        print(f"rewrote {split_attention(fp32_path, split_path)} Attention nodes")
        quantize_dynamic(str(split_path), str(qkv_path), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"])
        check = encoders["onnx"].encode_documents(texts[:32])
        encoders["onnx"].loaded.backend.session = session(split_path, args.threads)
        split_cos = (check * encoders["onnx"].encode_documents(texts[:32])).sum(axis=1)
        print(f"rewritten fp32 graph vs the export: cosine min {split_cos.min():.7f} over 32 texts")
        encoders["onnx"].loaded.backend.session = session(fp32_path, args.threads)
        encoders["int8-qkv"].loaded.backend.session = session(qkv_path, args.threads)
        for encoder in encoders.values():
            encoder.encode_documents(texts[:32])  # warm-up
        speed, outputs, load = timed_rounds(encoders, texts, args.rounds)
    print(f"\n{len(texts)} {args.corpus} texts, {args.threads} thread(s), load average during the run "
          f"{min(load):.1f}-{max(load):.1f}")
    print("| model | texts/s per round | median | vs onnx-int8 (paired) | vs fp32 (paired) "
          "| cosine to fp32 mean / min |")
    print("|---|---|---|---|---|---|")
    for name, values in speed.items():
        cosine = (outputs["onnx"] * outputs[name]).sum(axis=1)
        to_int8 = statistics.median(v / t for v, t in zip(values, speed["onnx-int8"]))
        to_fp32 = statistics.median(v / t for v, t in zip(values, speed["onnx"]))
        print(f"| {name} | {', '.join(f'{v:.1f}' for v in values)} | {statistics.median(values):.1f} | "
              f"{to_int8:.2f}x | {to_fp32:.2f}x | {cosine.mean():.4f} / {cosine.min():.4f} |")


if __name__ == "__main__":
    main()
