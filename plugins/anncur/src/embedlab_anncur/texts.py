"""Texts as two numpy arrays (UTF-8 bytes and offsets) for pickle-free state files."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from embedlab.errors import StateError


def pack_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 bytes, int64 offsets)``: text ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded], dtype=np.int64)]).astype(np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def unpack_texts(data: np.ndarray, offsets: np.ndarray) -> list[str]:
    """Inverse of :func:`pack_texts`; ``StateError`` when the arrays do not fit together."""
    if data.dtype != np.uint8 or offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0 \
            or offsets[-1] != data.size or np.any(np.diff(offsets) < 0):
        raise StateError("anncur: stored texts and offsets do not fit together")
    raw = data.tobytes()
    try:
        return [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError as error:
        raise StateError(f"anncur: stored texts are not valid UTF-8 ({error})") from None
