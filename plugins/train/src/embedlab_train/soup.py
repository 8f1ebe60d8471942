"""Model soup: the weighted average of several fine-tuned encoders' weights (Wortsman et al., 2022;
KaLM-Embedding and RzenEmbed average their fine-tuned checkpoints). Members must share one
architecture (typically the same base model trained with different seeds, data or losses)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch

from embedlab.components import describe
from embedlab.errors import InvalidInputError
from embedlab.persistence import save_state
from embedlab_train.encoder import FineTunedEncoder
from embedlab_train.model import WEIGHTS, model_files


def average_weights(files: Sequence[Path], weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """``sum_k w_k * theta_k`` over the ``model.safetensors`` ``files`` (uniform ``w`` by default,
    normalised to sum 1); integer tensors (position ids) are taken from the first member."""
    from safetensors.torch import load_file

    if not files:
        raise InvalidInputError("soup: no members")
    w = [1.0] * len(files) if weights is None else [float(x) for x in weights]
    if len(w) != len(files) or any(x < 0 for x in w) or sum(w) <= 0:
        raise InvalidInputError(f"soup: need one non-negative weight per member ({len(files)}), summing > 0; got {w}")
    w = [x / sum(w) for x in w]
    members = [load_file(str(f)) for f in files]
    keys = set(members[0])
    for file, member in zip(files[1:], members[1:]):
        if set(member) != keys or any(member[k].shape != members[0][k].shape for k in keys):
            raise InvalidInputError(f"soup: {file} does not have the architecture of {files[0]}")
    return {k: (sum(wi * m[k].double() for wi, m in zip(w, members)).to(members[0][k].dtype)
                if members[0][k].is_floating_point() else members[0][k].clone()) for k in sorted(keys)}


def make_soup(members: Sequence[FineTunedEncoder], path: str | Path,
              weights: Sequence[float] | None = None) -> FineTunedEncoder:
    """Average ``members``' weights into a new encoder saved at ``path`` (the first member's config)."""
    from safetensors.torch import save

    if not members:
        raise InvalidInputError("soup: no members")
    averaged = average_weights([m.model_dir / WEIGHTS for m in members], weights)
    files = {**model_files(members[0].model_dir), WEIGHTS: save(averaged, metadata={"format": "pt"})}
    record = {"soup": [m.state_fingerprint or "base" for m in members],
              "weights": list(weights) if weights is not None else None}
    save_state(path, members[0], files=files, meta={"record": record, "trained": True},
               identity=describe(members[0]))
    return FineTunedEncoder.load(path)
