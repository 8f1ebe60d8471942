"""MatMul roles of a transformer graph, which an int8 recipe may leave float32."""

from __future__ import annotations

import numpy as np
import onnx
from embedlab_transformers.quantize import RECIPES, Int8Recipe, fp32_nodes, matmul_roles
from onnx import TensorProto, helper, numpy_helper


def two_layers() -> onnx.ModelProto:
    """Two layers of MatMuls as the split graph has them (hidden 4): qkv, out, ffn_up, ffn_down,
    plus a MatMul of two activations (no constant weight), which has no role."""
    shapes = {"qkv": (4, 12), "out": (4, 4), "ffn_up": (4, 16), "ffn_down": (16, 4)}
    nodes, weights, previous = [], [], "x"
    for layer in range(2):
        for role, shape in shapes.items():
            name = f"l{layer}_{role}"
            weights.append(numpy_helper.from_array(np.zeros(shape, np.float32), f"{name}_w"))
            nodes.append(helper.make_node("MatMul", [previous, f"{name}_w"], [name], name=name))
            previous = name
    nodes.append(helper.make_node("MatMul", [previous, previous], ["y"], name="scores"))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], weights)
    return helper.make_model(graph)


def test_roles_and_layers_of_every_weighted_matmul() -> None:
    roles = matmul_roles(two_layers())
    assert roles["l0_qkv"] == ("qkv", "qkv:0") and roles["l1_ffn_down"] == ("ffn_down", "ffn_down:1")
    assert roles["l1_out"] == ("out", "out:1") and roles["l0_ffn_up"] == ("ffn_up", "ffn_up:0")
    assert "scores" not in roles and len(roles) == 8


def test_a_recipe_names_the_matmuls_it_keeps_in_float32() -> None:
    model = two_layers()
    recipe = Int8Recipe(tag="t", split_attention=True, fingerprint="t", fp32_matmuls=("ffn_down:1", "out"))
    assert sorted(fp32_nodes(model, recipe)) == ["l0_out", "l1_ffn_down", "l1_out"]
    shipped = {name: fp32_nodes(model, r) for name, r in RECIPES.items()}
    assert shipped == {"onnx-int8": [], "onnx-int8-qkv": [], "onnx-int8-qkv-ffn0": ["l0_ffn_down"]}
