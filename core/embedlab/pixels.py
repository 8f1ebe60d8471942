"""The ``pixels`` encoder: an image resampled to a small square, centred and L2-normalised.

No model and no fitting: nearest neighbours in pixel space, the floor any learned image encoder
should beat and the image encoder of the core's tests. It takes images (and the image of an
image + text item, ignoring the text, when ``composed = "image"``).
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import InvalidInputError
from embedlab.media import Image, ImageText, InputKind


class PixelEncoder(Component):
    """Pixels of each image at ``size x size`` (``channels`` 1 or 3), minus their mean, L2-normalised."""

    kind = "encoder"
    name = "pixels"
    output_kind = EmbeddingKind.DENSE

    @attrs.frozen
    class Config:
        """``size``: side of the resampled square; ``channels``: 1 (grey) or 3 (RGB);
        ``composed``: ``"refuse"`` image + text items, or use their ``"image"`` only."""

        size: int = attrs.field(default=16, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)])
        channels: int = attrs.field(default=3, validator=attrs.validators.in_((1, 3)))
        composed: str = attrs.field(default="refuse", validator=attrs.validators.in_(("refuse", "image")))

    @property
    def input_kinds(self) -> frozenset[InputKind]:
        if self.config.composed == "image":
            return frozenset({InputKind.IMAGE, InputKind.IMAGE_TEXT})
        return frozenset({InputKind.IMAGE})

    @property
    def dim(self) -> int:
        return self.config.size * self.config.size * self.config.channels

    def _vector(self, item: Any) -> np.ndarray:
        if isinstance(item, ImageText) and self.config.composed == "image":
            item = item.image
        if not isinstance(item, Image):
            raise InvalidInputError(f"pixels encoder: expected an Image, got {type(item).__name__}")
        side = self.config.size
        return item.resized(side, side).as_float(self.config.channels).reshape(-1)

    def _encode(self, items: Sequence[Any]) -> np.ndarray:
        if len(items) == 0:
            raise InvalidInputError("pixels encoder: no images to encode")
        out = np.stack([self._vector(item) for item in items]).astype(np.float32)
        out -= out.mean(axis=1, keepdims=True)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1).astype(np.float32)

    def encode_queries(self, texts: Sequence[Any]) -> np.ndarray:
        return self._encode(texts)

    def encode_documents(self, texts: Sequence[Any]) -> np.ndarray:
        return self._encode(texts)
