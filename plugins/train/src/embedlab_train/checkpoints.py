"""A training run's directory: resumable checkpoints, the best weights so far and the final model,
each a state directory of :mod:`embedlab.persistence` (manifest + sha256 per file, atomic) that is
also a complete model directory, so any of them loads as an encoder (``embedlab.load_component``).

::

    <run>/checkpoint/  weights, optimiser moments + loss parameters (trainer.safetensors), torch RNG,
                       progress (epoch, batch, step, early-stopping state) in the manifest's meta
    <run>/best/        the weights of the best held-out evaluation so far
    <run>/final/       the trained encoder; its presence means the run is complete
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from embedlab.cache import default_cache_dir
from embedlab.errors import StateError
from embedlab.persistence import MANIFEST, load_state, save_state
from embedlab_train.model import Student

CHECKPOINT, BEST, FINAL = "checkpoint", "best", "final"
TRAINER_STATE = "trainer.safetensors"
#: The loss's own trainable tensors (``Loss.parameters()``) next to the weights in ``best/``.
LOSS_PARAMETERS = "loss.safetensors"


def save_model_state(path: Path, model: Student, identity: Mapping[str, Any], meta: Mapping[str, Any],
                     *, arrays: Mapping[str, np.ndarray] | None = None,
                     extra_files: Mapping[str, bytes] | None = None) -> Path:
    """Write ``model``'s state files (weights and what reads them) as an encoder state directory
    (atomically)."""
    files = {**model.state_files(), **(extra_files or {})}
    return save_state(path, None, arrays=arrays, files=files, meta=meta, identity=identity)


def trainer_state_bytes(optimizer: torch.optim.Optimizer, names: list[str],
                        loss_parameters: Mapping[str, torch.Tensor]) -> bytes:
    """AdamW moments and step of every named parameter, and the loss's own parameters, as safetensors."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for name, param in zip(names, params):
        for key, value in optimizer.state.get(param, {}).items():
            tensors[f"{key}/{name}"] = torch.as_tensor(value).detach().to("cpu").contiguous().clone()
    for name, tensor in loss_parameters.items():
        tensors[f"loss/{name}"] = tensor.detach().to("cpu").contiguous().clone()
    return save(tensors)


def restore_trainer_state(file: Path, optimizer: torch.optim.Optimizer, names: list[str],
                          loss_parameters: Mapping[str, torch.Tensor]) -> None:
    """Put the moments and loss parameters of :func:`trainer_state_bytes` back in place."""
    from safetensors.torch import load_file

    tensors = load_file(str(file))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for name, param in zip(names, params):
        state = {key.split("/", 1)[0]: value.to(param.device) for key, value in tensors.items()
                 if key.split("/", 1)[1] == name}
        if state:
            optimizer.state[param] = state
    with torch.no_grad():
        for name, tensor in loss_parameters.items():
            if f"loss/{name}" not in tensors:
                raise StateError(f"{file}: loss parameter {name!r} missing from the checkpoint")
            tensor.copy_(tensors[f"loss/{name}"])


def complete(path: Path) -> bool:
    """Whether ``path`` holds a state directory (written atomically, so present means complete)."""
    return (path / MANIFEST).is_file()


def read_progress(run: Path, identity_hash: str) -> Any:
    """The verified checkpoint of ``run`` (None when there is none), refusing one of another run."""
    path = run / CHECKPOINT
    if not complete(path):
        return None
    state = load_state(path)
    found = state.meta.get("run")
    if found != identity_hash:
        raise StateError(f"{path} belongs to another training run (identity {found!r}, this run "
                         f"{identity_hash!r}); use another checkpoint_dir or delete it")
    return state


def tensors_bytes(tensors: Mapping[str, torch.Tensor]) -> bytes:
    """Named tensors (a loss's parameters) as the bytes of a safetensors file."""
    from safetensors.torch import save

    return save({name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()})


def load_tensors(file: Path, tensors: Mapping[str, torch.Tensor]) -> None:
    """Copy the tensors of a :func:`tensors_bytes` file into ``tensors`` (in place), or StateError."""
    from safetensors.torch import load_file

    found = load_file(str(file))
    missing = sorted(set(tensors) - set(found))
    if missing:
        raise StateError(f"{file}: tensor(s) {missing} missing")
    with torch.no_grad():
        for name, tensor in tensors.items():
            tensor.copy_(found[name])


def run_directory(setting: str | None, run_hash: str,
                  prefix: str = "embedlab-train-") -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """Where a run with identity ``run_hash`` lives, from a ``checkpoint_dir`` setting: ``"auto"``
    (``$EMBEDLAB_CACHE_DIR/train/<run hash>``: a rerun reuses a finished run and resumes a killed
    one), a path, or None (a fresh temporary folder, returned too so the caller keeps it alive)."""
    if setting is None:
        temporary = tempfile.TemporaryDirectory(prefix=prefix)
        return Path(temporary.name), temporary
    if setting == "auto":
        return default_cache_dir().expanduser() / "train" / run_hash[:32], None
    return Path(setting).expanduser(), None
