"""attrs fields with validators shared by the encoder presets and the reranker configs."""

from __future__ import annotations

import os
from typing import Any, Callable

import attrs

from embedlab.components import NOT_IDENTITY
from embedlab_transformers.backends import BACKENDS, DEVICES

OUTPUTS = ("dense", "tokens")
#: Metadata key of :func:`device_field` (the device the encoder runs its model on).
ENCODING_DEVICE = "embedlab_encoding_device"


def int_at_least(low: int) -> Callable[[Any, attrs.Attribute, Any], None]:
    """Validator: an ``int`` (not a bool) >= ``low``."""
    def check(_: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{attribute.name} must be an integer >= {low}, got {value!r}")
    return check


def model_path_field() -> Any:
    """``model_path``: a local model directory, None for all-MiniLM-L6-v2 from its wheel."""
    return attrs.field(default=None, converter=attrs.converters.optional(os.fspath),
                       validator=attrs.validators.optional(attrs.validators.instance_of(str)))


def max_length_field(default: int | None) -> Any:
    """``max_length``: tokens per text after truncation (special tokens included); None: the
    model's own limit."""
    return attrs.field(default=default, validator=attrs.validators.optional(int_at_least(2)))


def output_field(default: str) -> Any:
    """``output``: ``dense`` (one pooled vector per text) or ``tokens`` (one vector per token)."""
    return attrs.field(default=default, validator=attrs.validators.in_(OUTPUTS))


def backend_field() -> Any:
    """``backend``: ``torch``, ``torch-bf16`` (torch's bfloat16 autocast), ``onnx`` (ONNX Runtime on a
    cached export), ``onnx-int8`` (its
    dynamic int8 quantisation, attention in fp32: faster, cosine ~0.996 to fp32),
    ``onnx-int8-qkv`` (the Q/K/V projections int8 too: faster still on long texts) or
    ``onnx-int8-qkv-ffn0`` (``onnx-int8-qkv`` with the first layer's FFN down projection fp32),
    ``openvino-bf16`` (OpenVINO, bfloat16 compute where the CPU has it) or ``openvino-int8`` (OpenVINO,
    int8 weights, bfloat16 compute where the CPU has it); the OpenVINO ones need
    ``pip install 'embedlab-transformers[openvino]'``."""
    return attrs.field(default="torch", validator=attrs.validators.in_(BACKENDS))


def device_field() -> Any:
    """``device``: ``cpu``, ``cuda`` (torch backend; an error where no CUDA device is visible) or
    ``auto`` (``cuda`` where torch sees one, else ``cpu``); not part of the fingerprint."""
    return attrs.field(default="cpu", validator=attrs.validators.in_(DEVICES),
                       metadata={**NOT_IDENTITY, ENCODING_DEVICE: True})


def threads_field() -> Any:
    """``num_threads``: intra-op threads, None for the runtime's default."""
    return attrs.field(default=None, validator=attrs.validators.optional(int_at_least(1)),
                       metadata=NOT_IDENTITY)


def flag_field(default: bool) -> Any:
    return attrs.field(default=default, validator=attrs.validators.instance_of(bool))


def progress_field() -> Any:
    """``show_progress``: a tqdm bar over batches (not part of the fingerprint)."""
    return attrs.field(default=True, validator=attrs.validators.instance_of(bool), metadata=NOT_IDENTITY)
