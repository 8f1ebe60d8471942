"""Images as corpus items and queries (plugin API 1.1), and the input kinds encoders accept.

An item is a text (``str``), an :class:`Image` (uint8 pixels, ``(height, width, channels)``) or an
:class:`ImageText` (an image plus a text: a reference image and a modification instruction in
composed image retrieval). Components declare what they take with an ``input_kinds`` attribute:
a set of :class:`InputKind` values for both roles, or ``{"queries": ..., "documents": ...}``.
Components that do not declare it take text only, so every existing encoder, retriever and
reranker keeps working and a pipeline that would feed it images fails before any work
(:func:`check_inputs`). numpy only; reading image files needs Pillow (``.npy`` files do not).
"""

from __future__ import annotations

import enum
import hashlib
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import attrs
import numpy as np

from embedlab.errors import ConfigError, InvalidInputError


class InputKind(str, enum.Enum):
    """What one corpus item or query is."""

    TEXT = "text"
    IMAGE = "image"
    IMAGE_TEXT = "image+text"


TEXT_ONLY = frozenset({InputKind.TEXT})


def _pixels(value: Any) -> np.ndarray:
    """uint8 ``(h, w, c)`` pixels from uint8/bool/integer arrays in 0..255 or floats in [0, 1]."""
    array = np.asarray(value)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3) or 0 in array.shape:
        raise InvalidInputError(f"image: expected (height, width) or (height, width, 1|3) pixels, "
                                f"got shape {array.shape}")
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    if array.dtype == bool:
        return np.ascontiguousarray(array.astype(np.uint8) * 255)
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise InvalidInputError(f"image: integer pixels must lie in 0..255, got "
                                    f"{array.min()}..{array.max()}")
        return np.ascontiguousarray(array.astype(np.uint8))
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise InvalidInputError("image: pixels contain NaN or inf")
        if array.min() < 0 or array.max() > 1:
            raise InvalidInputError(f"image: float pixels must lie in [0, 1], got "
                                    f"{array.min():.3g}..{array.max():.3g}")
        return np.ascontiguousarray(np.rint(array * 255).astype(np.uint8))
    raise InvalidInputError(f"image: unsupported pixel dtype {array.dtype}")


@attrs.frozen(eq=False)
class Image:
    """An image: uint8 pixels ``(height, width, channels)``, channels 1 (grey) or 3 (RGB)."""

    pixels: np.ndarray = attrs.field(converter=_pixels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.pixels.shape)  # type: ignore[return-value]

    @cached_property
    def content_hash(self) -> str:
        """sha256 over the shape and the pixel bytes: the image part of embedding cache keys."""
        digest = hashlib.sha256(np.asarray(self.pixels.shape, dtype=np.int64).tobytes())
        digest.update(self.pixels.tobytes())
        return digest.hexdigest()

    def as_float(self, channels: int | None = None) -> np.ndarray:
        """float32 pixels in [0, 1], ``(h, w, c)``; ``channels`` 1 or 3 converts grey <-> RGB."""
        pixels = self.pixels.astype(np.float32) / 255.0
        if channels is None or channels == pixels.shape[2]:
            return pixels
        if channels == 3:
            return np.repeat(pixels, 3, axis=2)
        if channels == 1:
            return pixels.mean(axis=2, keepdims=True, dtype=np.float32)
        raise InvalidInputError(f"image: channels must be 1 or 3, got {channels}")

    def resized(self, height: int, width: int) -> Image:
        """This image resampled to ``height x width``: box (area) averaging where it shrinks,
        nearest neighbour where it grows."""
        return Image(np.rint(_resample(_resample(self.pixels.astype(np.float32), height, 0), width, 1))
                     .astype(np.uint8))

    @classmethod
    def open(cls, path: str | Path) -> Image:
        """Read an image file: ``.npy`` pixels with numpy, any other format with Pillow."""
        path = Path(path)
        if not path.is_file():
            raise InvalidInputError(f"image file {path} does not exist")
        if path.suffix == ".npy":
            return cls(np.load(path, allow_pickle=False))
        try:
            from PIL import Image as PILImage
        except ImportError:
            raise ConfigError(f"reading {path.name} needs Pillow (pip install pillow); .npy pixel files "
                              "need nothing") from None
        with PILImage.open(path) as opened:
            converted = opened.convert("L" if opened.mode in ("1", "L", "I", "F") else "RGB")
            return cls(np.asarray(converted))


def _resample(pixels: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Resample one axis to ``size``: mean over equal-area bins when shrinking, nearest when growing."""
    if size <= 0:
        raise InvalidInputError(f"image: target size must be positive, got {size}")
    n = pixels.shape[axis]
    if size == n:
        return pixels
    if size > n:
        return np.take(pixels, (np.arange(size) * n) // size, axis=axis)
    starts = (np.arange(size) * n) // size
    sums = np.add.reduceat(pixels, starts, axis=axis)
    counts = np.diff(np.append(starts, n)).astype(np.float32)
    shape = [1] * pixels.ndim
    shape[axis] = size
    return sums / counts.reshape(shape)


@attrs.frozen(eq=False)
class ImageText:
    """An image plus a text: a composed query (reference image + modification instruction) or a
    captioned document that an encoder embeds jointly."""

    image: Image = attrs.field(validator=attrs.validators.instance_of(Image))
    text: str = attrs.field(validator=attrs.validators.instance_of(str))

    @cached_property
    def content_hash(self) -> str:
        return hashlib.sha256(f"{self.image.content_hash}|{self.text}".encode("utf-8", "surrogatepass")).hexdigest()


Item = str | Image | ImageText


def item_kind(item: Any) -> InputKind:
    """The input kind of one item."""
    if isinstance(item, str):
        return InputKind.TEXT
    if isinstance(item, Image):
        return InputKind.IMAGE
    if isinstance(item, ImageText):
        return InputKind.IMAGE_TEXT
    raise InvalidInputError(f"an item is a str, Image or ImageText, got {type(item).__name__}")


def compose(texts: Sequence[str], images: Sequence[Image | None] | None) -> list[Item]:
    """Items from parallel texts and optional images: a text where there is no image, the image
    where the text is empty, an :class:`ImageText` where both are given."""
    if images is None:
        return list(texts)
    return [text if image is None else (ImageText(image, text) if text else image)
            for text, image in zip(texts, images)]


def kinds_of(items: Iterable[Any]) -> dict[InputKind, int]:
    """How many items there are of each kind."""
    counts: dict[InputKind, int] = {}
    for item in items:
        kind = item_kind(item)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def accepted_inputs(component: Any, role: str) -> frozenset[InputKind]:
    """The input kinds ``component`` declares for ``role`` (``queries``/``documents``); text only
    when it declares nothing."""
    declared = getattr(component, "input_kinds", None)
    if declared is None:
        return TEXT_ONLY
    if isinstance(declared, Mapping):
        declared = declared.get(role, TEXT_ONLY)
    try:
        return frozenset(InputKind(k) for k in declared)
    except ValueError as error:
        raise ConfigError(f"{_name(component)}: invalid input_kinds {declared!r} ({error}); "
                          f"use {', '.join(k.value for k in InputKind)}") from None


def _name(component: Any) -> str:
    return str(getattr(component, "name", None) or type(component).__name__)


def check_inputs(component: Any, role: str, kinds: Mapping[InputKind, int], *, where: str = "") -> None:
    """Raise :class:`InvalidInputError` when ``component`` does not take every kind in ``kinds``
    (counts of items per kind, see :func:`kinds_of`) as its ``role`` input."""
    accepted = accepted_inputs(component, role)
    refused = sorted((k for k in kinds if k not in accepted), key=lambda k: k.value)
    if not refused:
        return
    given = ", ".join(f"{kinds[k]} {k.value}" for k in refused)
    prefix = f"{where}: " if where else ""
    raise InvalidInputError(
        f"{prefix}{_name(component)} takes {' or '.join(sorted(k.value for k in accepted))} {role}, but "
        f"the {role} include {given} item(s); use a component whose input_kinds include "
        f"{', '.join(k.value for k in refused)} (e.g. the cir encoder from embedlab-cir)")


def pack_images(images: Sequence[Image | None]) -> dict[str, np.ndarray]:
    """Arrays that store ``images`` without pickle: flat uint8 pixels and an ``(n, 3)`` int64 shape
    table (zeros where an item has no image)."""
    shapes = np.zeros((len(images), 3), dtype=np.int64)
    chunks = []
    for i, image in enumerate(images):
        if image is not None:
            shapes[i] = image.shape
            chunks.append(image.pixels.reshape(-1))
    pixels = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.uint8)
    return {"image_pixels": pixels, "image_shapes": shapes}


def unpack_images(pixels: np.ndarray, shapes: np.ndarray) -> list[Image | None]:
    """Inverse of :func:`pack_images`; checks that the pixel count matches the shape table."""
    shapes = np.asarray(shapes, dtype=np.int64)
    if shapes.ndim != 2 or shapes.shape[1] != 3 or (shapes < 0).any():
        raise InvalidInputError(f"image shape table must be (n, 3) non-negative, got {shapes.shape}")
    sizes = shapes.prod(axis=1)
    if int(sizes.sum()) != pixels.size:
        raise InvalidInputError(f"image pixels hold {pixels.size} values, the shape table needs {int(sizes.sum())}")
    out: list[Image | None] = []
    start = 0
    for shape, size in zip(shapes.tolist(), sizes.tolist()):
        out.append(Image(pixels[start:start + size].reshape(shape)) if size else None)
        start += size
    return out


__all__ = ["Image", "ImageText", "InputKind", "Item", "TEXT_ONLY", "accepted_inputs", "check_inputs",
           "compose", "item_kind", "kinds_of", "pack_images", "unpack_images"]
