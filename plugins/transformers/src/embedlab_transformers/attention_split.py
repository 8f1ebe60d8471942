"""Unfuse the Q/K/V projection of ONNX Runtime's fused ``Attention`` so that it can be quantised.

onnxscript's fusions turn each attention block of the export into one ``com.microsoft`` ``Attention``
node whose weight is a ``Concat`` of the Q, K and V matrices. Dynamic quantisation of that node
(``QAttention``) is per tensor only and costs too much accuracy (mean cosine 0.937 to fp32), so
the ``onnx-int8`` recipe leaves it float32, and on 256-token texts it is then half of the int8
model's time. :func:`split_attention` rewrites each such node into ``MatMul`` (the concatenated
weights) + ``Split`` + ``MultiHeadAttention`` (same bias, same mask bias, float32 scores and
softmax): the same function, with a plain ``MatMul`` that per-channel int8 quantisation handles.
"""

from __future__ import annotations

from pathlib import Path

#: ``Attention`` inputs (com.microsoft): input, weights, bias, mask_index, past, attention_bias.
WEIGHTS, BIAS, ATTENTION_BIAS = 1, 2, 5


def split_attention(source: Path, target: Path) -> int:
    """Write ``source`` to ``target`` with every fused ``Attention`` whose weights are a ``Concat``
    of constant matrices (and that has no mask index or past state) split as described above;
    returns how many nodes were rewritten."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    nodes, rewritten = [], 0
    for node in graph.node:
        concat = producer.get(node.input[WEIGHTS]) if _splittable(node) else None
        if concat is None or concat.op_type != "Concat" or not all(i in constants for i in concat.input):
            nodes.append(node)
            continue
        heads = next(helper.get_attribute_value(a) for a in node.attribute if a.name == "num_heads")
        weight = np.concatenate([numpy_helper.to_array(constants[i]) for i in concat.input], axis=1)
        hidden = weight.shape[1] // 3
        prefix = f"{node.name}_split"
        graph.initializer.extend([numpy_helper.from_array(weight, f"{prefix}_w"),
                                  numpy_helper.from_array(np.array([hidden] * 3, np.int64), f"{prefix}_sizes")])
        mask_bias = node.input[ATTENTION_BIAS] if len(node.input) > ATTENTION_BIAS else ""
        nodes += [helper.make_node("MatMul", [node.input[0], f"{prefix}_w"], [f"{prefix}_qkv"],
                                   name=f"{prefix}_matmul"),
                  helper.make_node("Split", [f"{prefix}_qkv", f"{prefix}_sizes"],
                                   [f"{prefix}_q", f"{prefix}_k", f"{prefix}_v"], axis=2, name=f"{prefix}_split"),
                  helper.make_node("MultiHeadAttention",
                                   [f"{prefix}_q", f"{prefix}_k", f"{prefix}_v", node.input[BIAS], "", mask_bias],
                                   list(node.output[:1]), domain="com.microsoft", num_heads=heads,
                                   name=f"{prefix}_mha")]
        rewritten += 1
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for n in graph.node for name in n.input}
    keep = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    onnx.save(model, str(target))
    return rewritten


def _splittable(node) -> bool:  # type: ignore[no-untyped-def]
    """A fused ``Attention`` with a bias, one output, and neither a mask index nor past state (those
    have no ``MultiHeadAttention`` equivalent here)."""
    if node.op_type != "Attention" or node.domain != "com.microsoft" or any(node.output[1:]):
        return False
    inputs = list(node.input) + [""] * 5
    return bool(inputs[BIAS]) and not inputs[3] and not inputs[4]
