"""Runtimes that map padded token-id batches to last hidden states: torch, ONNX Runtime or OpenVINO."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from embedlab.errors import ConfigError
from embedlab.threads import torch_threads
from embedlab_transformers.model_files import import_transformers
from embedlab_transformers.openvino_backend import OPENVINO_RECIPES, OpenVinoBackend
from embedlab_transformers.quantize import RECIPES, Int8Recipe, ensure_quantized_model

#: The torch backends: float32, and bfloat16 autocast.
TORCH_BACKENDS = ("torch", "torch-bf16")
#: The torch backends, ``onnx`` (fp32), one ``onnx-int8*`` backend per int8 recipe and one ``openvino-*``
#: backend per OpenVINO recipe.
BACKENDS = (*TORCH_BACKENDS, "onnx", *RECIPES, *OPENVINO_RECIPES)
#: Where the model runs (:func:`resolve_device`).
DEVICES = ("cpu", "cuda", "auto")


def resolve_device(requested: str, backend: str) -> str:
    """The device a backend runs on: ``cpu``; ``cuda`` (torch backends only; ConfigError when torch
    sees no CUDA device, with what it sees); ``auto``: ``cuda`` when a torch backend sees a CUDA
    device, else ``cpu``. The ONNX and OpenVINO backends always run on the CPU."""
    if requested not in DEVICES:
        raise ConfigError(f"unknown device {requested!r}; expected one of {DEVICES}")
    if requested == "cpu":
        return "cpu"
    if backend not in TORCH_BACKENDS:
        if requested == "cuda":
            raise ConfigError(f"device='cuda' needs backend='torch' or 'torch-bf16': the {backend!r} backend runs on "
                              "the CPU")
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if requested == "cuda":
        raise ConfigError(f"device='cuda' but torch sees no CUDA device (torch {torch.__version__}, built with "
                          f"CUDA {torch.version.cuda}, CUDA_VISIBLE_DEVICES="
                          f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}); device='auto' falls back to the CPU")
    return "cpu"


class Backend(Protocol):
    """Computes ``(batch, length, dim)`` float32 last hidden states."""

    input_names: Sequence[str]

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray: ...


def load_torch_model(model_dir: Path) -> Any:
    """The float32 ``AutoModel`` of ``model_dir`` in eval mode, from local files only."""
    import torch

    transformers = import_transformers()
    model = transformers.AutoModel.from_pretrained(model_dir, local_files_only=True, dtype=torch.float32)
    return model.eval()


def model_input_names(model: Any, tokenizer: Any) -> list[str]:
    """The tokenizer outputs that the model's ``forward`` accepts, in the tokenizer's order."""
    accepted = inspect.signature(model.forward).parameters
    return [name for name in tokenizer.model_input_names if name in accepted]


class TorchBackend:
    """The Hugging Face model run by torch on ``device`` (``cpu`` or ``cuda``), in inference mode;
    with ``bf16``, under torch's bfloat16 autocast (matrix products in bfloat16, float32 weights)."""

    def __init__(self, model_dir: Path, tokenizer: Any, num_threads: int | None, device: str = "cpu",
                 bf16: bool = False) -> None:
        self.model = load_torch_model(model_dir).to(device)
        self.input_names = model_input_names(self.model, tokenizer)
        self.num_threads, self.device, self.bf16 = num_threads, device, bf16

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        import torch

        with (torch.inference_mode(), torch_threads(self.num_threads),
              torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.bf16)):
            output = self.model(**{name: torch.from_numpy(inputs[name]).to(self.device) for name in self.input_names})
        return output.last_hidden_state.float().cpu().numpy()


class OnnxBackend:
    """The model exported to ONNX once (cached on disk), run by an ONNX Runtime CPU session;
    with an int8 ``recipe``, its dynamic int8 version (:mod:`embedlab_transformers.quantize`)."""

    def __init__(self, model_dir: Path, tokenizer: Any, max_length: int, num_threads: int | None,
                 recipe: Int8Recipe | None = None) -> None:
        from embedlab_transformers.onnx_export import ensure_onnx_model

        self.path = ensure_onnx_model(model_dir, tokenizer, max_length)
        if recipe is not None:
            self.path = ensure_quantized_model(self.path, recipe)
        self.num_threads = num_threads
        self.session = self.open_session(self.path)
        self.input_names = [node.name for node in self.session.get_inputs()]

    def open_session(self, path: Path) -> Any:
        """An ONNX Runtime CPU session of the model file ``path`` with this backend's options."""
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if self.num_threads is not None:
            options.intra_op_num_threads = self.num_threads
            options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        feed = {name: inputs[name] for name in self.input_names}
        return self.session.run(["last_hidden_state"], feed)[0]


def make_backend(kind: str, model_dir: Path, tokenizer: Any, max_length: int,
                 num_threads: int | None, device: str = "cpu") -> Backend:
    """Build the backend named ``kind`` (one of :data:`BACKENDS`) on ``device``, resolved by
    :func:`resolve_device` before anything loads."""
    device = resolve_device(device, kind)
    if kind in TORCH_BACKENDS:
        return TorchBackend(model_dir, tokenizer, num_threads, device, bf16=kind == "torch-bf16")
    if kind == "onnx" or kind in RECIPES:
        return OnnxBackend(model_dir, tokenizer, max_length, num_threads, recipe=RECIPES.get(kind))
    if kind in OPENVINO_RECIPES:
        return OpenVinoBackend(model_dir, tokenizer, max_length, num_threads, OPENVINO_RECIPES[kind])
    raise ValueError(f"unknown backend {kind!r}; expected one of {BACKENDS}")


def backend_fingerprint(kind: str) -> str | None:
    """What the vectors of backend ``kind`` depend on beyond the model and the config (part of the
    encoder's fingerprint): an ``onnx-int8*`` recipe, an ``openvino-*`` recipe with the precision it
    computes in on this CPU, ``torch-bf16``'s autocast; None for ``torch``, ``onnx`` and ``onnx-int8``
    (whose cached vectors predate recipes in fingerprints)."""
    if kind in OPENVINO_RECIPES:
        return OPENVINO_RECIPES[kind].fingerprint()
    if kind == "torch-bf16":
        return "torch bfloat16 autocast"
    recipe = RECIPES.get(kind)
    return None if recipe is None else recipe.fingerprint
