"""The query side of JPQ on a frozen encoder: a trainable linear map before the fixed rotation.

JPQ trains the query encoder together with the PQ centroids, so queries move towards where the
*compressed* documents are. With the encoder frozen (cached vectors, any encoder), the query side
here is a ``d x d`` matrix ``W`` applied to every query vector, identity at the start, followed by
the fixed OPQ rotation ``R``: a query ``q`` is scored as ``R W q`` against the rotated codes. Because
``<R W q, c> = <q, W^T R^T c>``, the same scores come from raw queries against ``decode()``
output, so indexes that only see decoded vectors stay exact.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class LinearQueryMap(nn.Module):
    """``q -> R (W q)``: ``W`` (identity at the start, trainable when ``trainable``) then the fixed
    rotation ``R`` (identity when None)."""

    def __init__(self, dim: int, rotation: np.ndarray | None, trainable: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim), requires_grad=trainable)
        fixed = torch.eye(dim) if rotation is None else torch.from_numpy(np.array(rotation, np.float32))
        self.register_buffer("rotation", fixed)

    @property
    def trainable(self) -> bool:
        return self.weight.requires_grad

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        return queries @ (self.rotation @ self.weight).T

    def adapter(self) -> np.ndarray | None:
        """A copy of ``W`` when it is trainable, else None (the map is the rotation alone)."""
        return self.weight.detach().numpy().copy() if self.trainable else None
