"""Dynamic int8 quantisation of the cached ONNX export (the ``onnx-int8*`` backends).

Two recipes (measured on SciFact against the fp32 export, docs/benchmarks.md), one per backend:

* ``onnx-int8``: ONNX Runtime's ``quantize_dynamic`` with int8 weights **per output channel** on the
  ``MatMul`` nodes only (the feed-forward and output projections, two thirds of the encoder's
  multiply-adds); the fused ``Attention`` nodes (Q/K/V projection + scores) and the embeddings stay
  float32. Quantising ``Attention`` too (the default) drops the mean cosine to fp32 from 0.996 to
  0.937 for no extra speed.
* ``onnx-int8-qkv``: first :func:`embedlab_transformers.attention_split.split_attention` (the Q/K/V
  projection becomes a plain ``MatMul``), then the same quantisation, so the Q/K/V projections are
  int8 per channel too; scores and softmax stay float32. Faster on long texts, where the fp32
  attention was half of ``onnx-int8``'s time.
* ``onnx-int8-qkv-ffn0``: ``onnx-int8-qkv`` with one MatMul left float32, the first layer's FFN
  down projection (``ffn_down:0``, 1/18 of the int8 multiply-adds), whose input has the largest
  outliers: SciFact nDCG@10 +0.0040 from fp32 where ``onnx-int8-qkv`` is +0.0114, for ~4 % of
  its speed (docs/benchmarks.md).

Activations are quantised per batch at run time (uint8). A recipe's ``fingerprint`` joins the
encoder's cache fingerprint (:meth:`TransformersEncoder.state_fingerprint`), so a changed recipe
never reuses cached vectors; ``onnx-int8``'s is None because its cached vectors predate recipes in
fingerprints (its backend name alone identifies it: change it only under a new backend name).

The quantised file is cached beside the fp32 export with a record of its sha256 and size
(``model-int8-<tag>.onnx.json``); a file that does not match its record (truncated, edited,
or left without a record by a killed process) is quantised again, with a warning.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
import warnings
from pathlib import Path

import attrs

from embedlab.atomic import fsync_path
from embedlab.persistence import sha256_file
from embedlab_transformers.model_files import file_sha256

QUANTIZED_OPS = ("MatMul",)


@attrs.frozen
class Int8Recipe:
    """How a backend turns the fp32 export into int8: ``tag`` names the cached file (change it with
    the recipe, so stale files are never reused), ``split_attention`` unfuses the Q/K/V projection
    first, ``fingerprint`` joins the encoder's cache fingerprint (None: the backend name alone)."""

    tag: str
    split_attention: bool
    fingerprint: str | None
    #: MatMuls left float32, as ``role`` (every layer) or ``role:layer`` (:func:`matmul_roles`).
    fp32_matmuls: tuple[str, ...] = ()
    #: One weight scale per output column (True) or per tensor.
    per_channel: bool = True


#: The recipe of each int8 backend.
RECIPES = {
    "onnx-int8": Int8Recipe(tag="q1", split_attention=False, fingerprint=None),
    "onnx-int8-qkv": Int8Recipe(tag="qkv1", split_attention=True, fingerprint="int8 recipe qkv1"),
    "onnx-int8-qkv-ffn0": Int8Recipe(tag="qkv1-ffn0", split_attention=True,
                                     fingerprint="int8 recipe qkv1, ffn_down:0 fp32", fp32_matmuls=("ffn_down:0",)),
}


def matmul_roles(model: object) -> dict[str, tuple[str, ...]]:
    """For every ``MatMul`` with a constant ``(rows, columns)`` weight, by node name, the names a
    recipe's ``fp32_matmuls`` may use: its role (``qkv``: columns = 3 rows; ``out``: square;
    ``ffn_up``: wider; ``ffn_down``: narrower) and ``role:layer``, layers counted from 0 by the
    ``ffn_down`` MatMuls before it (each transformer layer ends with one)."""
    constants = {init.name: tuple(init.dims) for init in model.graph.initializer}
    roles, layer = {}, 0
    for node in model.graph.node:
        shape = constants.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        if shape is None or len(shape) != 2:
            continue
        rows, columns = shape
        role = ("qkv" if columns == 3 * rows else "out" if columns == rows
                else "ffn_up" if columns > rows else "ffn_down")
        roles[node.name] = (role, f"{role}:{layer}")
        layer += role == "ffn_down"
    return roles


def fp32_nodes(model: object, recipe: Int8Recipe) -> list[str]:
    """Names of the MatMuls that ``recipe`` leaves float32."""
    wanted = set(recipe.fp32_matmuls)
    return [name for name, labels in matmul_roles(model).items() if wanted.intersection(labels)]


def quantized_path(fp32_path: Path, recipe: Int8Recipe = RECIPES["onnx-int8"]) -> Path:
    return fp32_path.with_name(f"model-int8-{recipe.tag}.onnx")


def record_path(target: Path) -> Path:
    """The record of ``target``'s sha256 and size."""
    return target.with_name(f"{target.name}.json")


def quantized_problem(target: Path) -> str | None:
    """Why the cached int8 model ``target`` cannot be used (``"absent"`` when there is none), or None."""
    if not os.path.lexists(target):
        return "absent"
    if not target.is_file():
        return "not a regular file"
    try:
        record = json.loads(record_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        return f"its checksum record is missing or unreadable ({type(error).__name__})"
    stat = target.stat()
    if not isinstance(record, dict) or record.get("bytes") != stat.st_size:
        return "truncated or grown since it was written"
    if file_sha256(target, stat.st_size, stat.st_mtime_ns) != record.get("sha256"):
        return "it does not match its checksum"
    return None


def quantize(source: Path, destination: Path, recipe: Int8Recipe) -> None:
    """Quantise the fp32 model ``source`` into ``destination`` with ``recipe``."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from embedlab_transformers.attention_split import split_attention

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "consider pre-processing": the export is already optimised
    split = destination.with_name(f"{destination.name}.split.onnx")
    try:
        if recipe.split_attention:
            split_attention(source, split)
            source = split
        excluded = fp32_nodes(onnx.load(str(source)), recipe) if recipe.fp32_matmuls else []
        quantize_dynamic(str(source), str(destination), weight_type=QuantType.QInt8, per_channel=recipe.per_channel,
                         op_types_to_quantize=list(QUANTIZED_OPS), nodes_to_exclude=excluded)
    finally:
        root.setLevel(level)
        split.unlink(missing_ok=True)


def ensure_quantized_model(fp32_path: Path, recipe: Int8Recipe = RECIPES["onnx-int8"]) -> Path:
    """The int8 model next to the fp32 export, quantised first when absent or damaged. The model
    and then its record are each written to a temporary and renamed in (fsynced), so a killed
    process leaves a model whose record does not match, which the next call quantises again."""
    target = quantized_path(fp32_path, recipe)
    problem = quantized_problem(target)
    if problem is None:
        return target
    if problem != "absent":
        warnings.warn(f"int8 ONNX model {target} is unusable ({problem}); quantising it again", stacklevel=2)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    tmp_record = record_path(tmp)
    try:
        quantize(fp32_path, tmp, recipe)
        record = {"sha256": sha256_file(tmp), "bytes": tmp.stat().st_size, "recipe": recipe.tag}
        tmp_record.write_text(json.dumps(record), encoding="utf-8")
        fsync_path(tmp)
        fsync_path(tmp_record)
        os.replace(tmp, target)
        os.replace(tmp_record, record_path(target))
        fsync_path(target.parent, directory=True)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_record.unlink(missing_ok=True)
    return target
