"""OpenVINO backends (``openvino-bf16``, ``openvino-int8``): the torch model converted to OpenVINO in memory.

At load, :func:`openvino.convert_model` converts the float32 torch model, exported by
:func:`torch.export.export` with dynamic batch and length (about 5 s for MiniLM); the
``openvino-int8`` recipe then stores every weight as int8 per output channel with NNCF's data-free
weight compression (``INT8_ASYM``); the CPU plugin compiles the model for the precision the recipe asks
for. Nothing is cached on disk, so there is no file to corrupt, and OpenVINO's usage telemetry is declined
for these conversions (:func:`telemetry_declined`): nothing reaches the network.

``bf16`` runs the matrix products in bfloat16 on CPUs that have it (AVX512-BF16 / AMX: the speed-up
comes from those units, docs/benchmarks.md) and falls back to float32 elsewhere (where ``openvino-int8`` is about
as fast as ONNX Runtime's dynamic int8, measured with its BF16 capability hidden); the precision a
backend really computes in is :attr:`OpenVinoBackend.precision` and part of the encoder's fingerprint,
so cached vectors of a bf16 machine and a float32 machine never mix.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping
from unittest import mock

import attrs
import numpy as np

from embedlab.errors import ConfigError

#: Installs OpenVINO and NNCF: ``pip install 'embedlab-transformers[openvino]'``.
EXTRA = "embedlab-transformers[openvino]"
PRECISIONS = ("bf16", "f32")


@attrs.frozen
class OpenVinoRecipe:
    """``precision``: the inference precision asked of the CPU plugin (``bf16`` falls back to ``f32``
    where the CPU lacks it); ``int8_weights``: weights stored int8 per output channel (NNCF)."""

    precision: str = attrs.field(validator=attrs.validators.in_(PRECISIONS))
    int8_weights: bool = attrs.field(validator=attrs.validators.instance_of(bool))

    def fingerprint(self) -> str:
        """What the vectors depend on: the weights' format and the precision computed in here."""
        weights = "int8 weights (nncf int8_asym per channel)" if self.int8_weights else "float32 weights"
        return f"openvino, {weights}, {effective_precision(self.precision)} compute"


#: The recipe of each OpenVINO backend.
OPENVINO_RECIPES = {
    "openvino-bf16": OpenVinoRecipe(precision="bf16", int8_weights=False),
    "openvino-int8": OpenVinoRecipe(precision="bf16", int8_weights=True),
}


@contextlib.contextmanager
def telemetry_declined() -> Iterator[None]:
    """While the block runs, OpenVINO's telemetry consent check answers "declined". Its converter and
    NNCF send usage events (and write a client id under ``~/intel``) unless the user opted out with
    OpenVINO's ``opt_in_out``; embedlab never reaches the network at run time, so nothing is sent and
    nothing is written for the imports and conversions it runs; the user's own consent file is left alone."""
    try:
        from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker
    except ImportError:  # no telemetry package, nothing to decline
        yield
        return
    with mock.patch.object(OptInChecker, "check", lambda *_args, **_kwargs: ConsentCheckResult.DECLINED):
        yield


def import_extra(module: str) -> Any:
    """``module`` (``openvino`` or ``nncf``), or a ConfigError saying how to install the extra. Imported
    with telemetry declined (:func:`telemetry_declined`): importing openvino sends an event otherwise."""
    try:
        with telemetry_declined():
            return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(f"the OpenVINO backends need openvino and nncf, optional dependencies: "
                          f"pip install '{EXTRA}' ({error})") from None


@functools.cache
def cpu_capabilities() -> frozenset[str]:
    """The CPU plugin's ``OPTIMIZATION_CAPABILITIES`` (``BF16``, ``INT8``, ``FP32``...)."""
    return frozenset(import_extra("openvino").Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def effective_precision(requested: str) -> str:
    """``requested``, or ``f32`` when it is ``bf16`` and this CPU has no bfloat16 support."""
    return "bf16" if requested == "bf16" and "BF16" in cpu_capabilities() else "f32"


def convert(model_dir: Path, tokenizer: Any, max_length: int, recipe: OpenVinoRecipe) -> tuple[Any, list[str]]:
    """The OpenVINO model of ``model_dir`` (through :func:`torch.export.export`) with one output, the
    last hidden state, dynamic batch and length up to ``max_length``, its weights compressed when the
    recipe says so; and its input names."""
    import torch

    from embedlab_transformers.backends import load_torch_model, model_input_names

    ov = import_extra("openvino")
    model = load_torch_model(model_dir)
    names = model_input_names(model, tokenizer)
    example = {name: torch.ones(2, 8, dtype=torch.long) for name in names}
    batch, length = torch.export.Dim("batch"), torch.export.Dim("length", max=max_length)
    with torch.no_grad(), warnings.catch_warnings(), telemetry_declined():
        warnings.simplefilter("ignore", FutureWarning)  # pytree deprecations inside the converter
        program = torch.export.export(model, args=(), kwargs=example,
                                      dynamic_shapes={name: {0: batch, 1: length} for name in names})
        converted = ov.convert_model(program)
        converted = ov.Model([converted.output(0)], converted.get_parameters(), "last_hidden_state")
        if recipe.int8_weights:
            nncf = import_extra("nncf")
            nncf.set_log_level(logging.WARNING)  # not the per-layer bit-width table
            converted = nncf.compress_weights(converted, mode=nncf.CompressWeightsMode.INT8_ASYM)
    return converted, [parameter.get_any_name() for parameter in converted.inputs]


class OpenVinoBackend:
    """The model run by OpenVINO's CPU plugin (one stream, ``num_threads`` inference threads, no
    core pinning, so several encoders or worker processes can share a machine)."""

    def __init__(self, model_dir: Path, tokenizer: Any, max_length: int, num_threads: int | None,
                 recipe: OpenVinoRecipe) -> None:
        ov = import_extra("openvino")
        model, self.input_names = convert(model_dir, tokenizer, max_length, recipe)
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "ENABLE_CPU_PINNING": False,
                  "INFERENCE_PRECISION_HINT": effective_precision(recipe.precision)}
        if num_threads is not None:
            config["INFERENCE_NUM_THREADS"] = num_threads
        self.compiled = ov.Core().compile_model(model, "CPU", config)
        #: The precision the CPU plugin computes in (``bf16`` or ``f32``).
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").to_string()
        self.request = self.compiled.create_infer_request()

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        outputs = self.request.infer({name: inputs[name] for name in self.input_names})
        return np.array(outputs[self.compiled.output(0)], dtype=np.float32)  # a copy: the request reuses its buffer
