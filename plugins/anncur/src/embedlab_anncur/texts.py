"""Texts as two numpy arrays (UTF-8 bytes and offsets) for pickle-free state files."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from embedlab.errors import StateError
from embedlab.state_checks import check_array, check_offsets


def pack_texts(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(uint8 bytes, int64 offsets)``: text ``i`` is ``bytes[offsets[i]:offsets[i + 1]]``."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded], dtype=np.int64)]).astype(np.int64)
    return np.frombuffer(b"".join(encoded), dtype=np.uint8).copy(), offsets


def unpack_texts(data: np.ndarray, offsets: np.ndarray, where: str = "anncur: stored texts") -> list[str]:
    """Inverse of :func:`pack_texts`; ``StateError`` naming ``where`` when the arrays do not fit together."""
    check_array(data, where, dtype=np.uint8, ndim=1)
    check_offsets(offsets, None, data.size, f"{where} offsets")
    raw = data.tobytes()
    try:
        return [raw[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError as error:
        raise StateError(f"{where}: not valid UTF-8 ({error})") from None
