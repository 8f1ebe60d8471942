"""One-time ONNX export of a Hugging Face encoder, cached on disk by weights and max_length.

The torch >= 2.9 exporter is ``torch.onnx.export(..., dynamo=True)`` (``torch.export`` +
onnxscript; the TorchScript exporter is deprecated). The exported graph then goes through
onnxscript's ONNX Runtime fusions (fused Attention, SkipLayerNormalization, BiasGelu).
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from embedlab.atomic import atomic_directory
from embedlab.cache import default_cache_dir
from embedlab.persistence import sha256_file
from embedlab_transformers.backends import load_torch_model, model_input_names
from embedlab_transformers.model_files import file_sha256, weight_files, weights_sha256

logger = logging.getLogger(__name__)

#: Bumped whenever the export recipe changes, so stale exports are never reused.
RECIPE_VERSION = 1
#: Above this many bytes of weights the ONNX file keeps its tensors in a side file (protobuf limit).
EXTERNAL_DATA_BYTES = 1_800_000_000
#: The export's metadata, with the sha256 and size of every file it wrote.
EXPORT_META = "export.json"


def cache_dir() -> Path:
    """``$EMBEDLAB_CACHE_DIR/onnx``, by default ``~/.cache/embedlab/onnx``."""
    return default_cache_dir().expanduser() / "onnx"


def export_path(model_dir: Path, max_length: int) -> Path:
    """Where the export of these weights for this ``max_length`` lives."""
    key = f"{weights_sha256(model_dir)}-len{max_length}-r{RECIPE_VERSION}"
    return cache_dir() / key / "model.onnx"


def ensure_onnx_model(model_dir: Path, tokenizer: Any, max_length: int) -> Path:
    """The cached ONNX export, exported first when absent, and again (with a warning) when the
    cached files do not match the checksums recorded with them (a truncated or edited model.onnx,
    or an export of an older embedlab, which recorded none). The export directory is published
    atomically (:func:`embedlab.atomic.atomic_directory`)."""
    target = export_path(model_dir, max_length)
    problem = export_problem(target.parent)
    if problem is None:
        return target
    if problem != "absent":
        warnings.warn(f"ONNX export {target.parent} is unusable ({problem}); exporting it again", stacklevel=2)
    logger.warning("exporting %s to ONNX (once; cached in %s)", model_dir, target.parent)
    model = load_torch_model(model_dir)
    names = model_input_names(model, tokenizer)
    if target.parent.is_file() or target.parent.is_symlink():
        target.parent.unlink()
    with atomic_directory(target.parent, check_existing=lambda existing: None) as staging:
        external = sum(f.stat().st_size for f in weight_files(model_dir)) > EXTERNAL_DATA_BYTES
        fused = export_onnx(model, names, max_length, staging / target.name, external_data=external)
        files = {f.name: {"sha256": sha256_file(f), "bytes": f.stat().st_size} for f in sorted(staging.iterdir())}
        meta = {"model_dir": str(model_dir), "max_length": max_length, "input_names": names,
                "recipe": RECIPE_VERSION, "ort_fusions": fused, "files": files}
        (staging / EXPORT_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return target


def export_problem(folder: Path) -> str | None:
    """Why the export in ``folder`` cannot be used (``"absent"`` when there is none), or None.
    Each file's sha256 is computed once per process and file version."""
    if not folder.exists():
        return "absent"
    try:
        meta = json.loads((folder / EXPORT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        return f"{EXPORT_META} is missing or unreadable ({type(error).__name__})"
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or "model.onnx" not in files:
        return f"{EXPORT_META} records no checksums (an export of an older embedlab)"
    for name, entry in files.items():
        file = folder / str(name)
        if not isinstance(entry, dict) or not file.is_file() or file.stat().st_size != entry.get("bytes"):
            return f"{name} is missing or truncated"
        stat = file.stat()
        if file_sha256(file, stat.st_size, stat.st_mtime_ns) != entry.get("sha256"):
            return f"{name} does not match its checksum"
    return None


def _last_hidden_state_module(model: Any, names: Sequence[str]) -> Any:
    """A module taking the inputs ``names`` positionally whose only output is ``last_hidden_state``
    (so that, for example, BERT's unused pooler is not exported)."""
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(names, inputs))).last_hidden_state

    return LastHiddenState()


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's informational warnings and log lines during the export."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo")]
    levels = [log.level for log in loggers]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for log in loggers:
            log.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for log, level in zip(loggers, levels):
                log.setLevel(level)


def export_onnx(model: Any, names: Sequence[str], max_length: int, path: Path,
                *, external_data: bool = False) -> dict[str, int]:
    """Export ``model`` (inputs ``names``, dynamic batch and sequence length up to ``max_length``)
    to ``path``; returns how many subgraphs each ONNX Runtime fusion replaced."""
    import torch
    from onnxscript import ir
    from onnxscript.rewriter.ort_fusions import optimize_for_ort

    length = min(8, max_length)
    example = tuple(torch.ones((2, length), dtype=torch.long) if name == "attention_mask"
                    else torch.zeros((2, length), dtype=torch.long) for name in names)
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=max_length)
    with _quiet_exporter():
        program = torch.onnx.export(_last_hidden_state_module(model, names), example, dynamo=True, verbose=False,
                                    input_names=list(names), output_names=["last_hidden_state"],
                                    dynamic_shapes=(tuple({0: batch, 1: sequence} for _ in names),))
        onnx_model, stats = optimize_for_ort(program.model)
    ir.save(onnx_model, path, external_data=f"{path.name}.data" if external_data else None)
    return {name: int(count) for name, count in stats.items() if count}
