"""Test helpers for the DSI-family plugins (dsi, se-dsi, dsi-pp): tiny retriever settings over a tiny
random BERT with MiniLM's tokenizer (milliseconds per step). Use with
``embedlab_train.head_fixtures.private_cache`` so training runs and hidden states stay in a temporary cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def tiny_settings(model_path: str | Path, **overrides: Any) -> dict[str, Any]:
    """Retriever parameters for the tiny model at ``model_path``: one small decoder layer, no dropout,
    no held-out queries or checkpoints, one thread, no progress bars; ``overrides`` replace any of them."""
    return {"model_path": str(model_path), "max_length": 32, "layers": 1, "heads": 2, "feedforward": 64,
            "dropout": 0.0, "epochs": 80, "batch_size": 16, "lr": 3e-3, "warmup_ratio": 0.0,
            "validation_fraction": 0.0, "beam_size": 10, "num_threads": 1, "show_progress": False,
            "checkpoint_dir": None, **overrides}
