"""BEBR code layout and lookup-table scoring (numpy only).

A code of ``levels`` (= u + 1) loops over ``code_dim`` (= m) output dimensions is stored as
``levels`` bit planes, each ``numpy.packbits`` of one loop's signs (bit 1 = +1, bit 0 = -1)::

    [ plane 0: m bits | plane 1: m bits | ... | plane u: m bits ]   ->   m * (u + 1) / 8 bytes

Plane 0 alone is a plain 1-bit-per-dimension sign code. The vector a code stands for is the
*composite* ``sum_t w_t * s_t`` with ``w_t = 2**-t`` and ``s_t`` in {-1, +1}^m.

Scoring a query vector ``z`` (m values in code space) against codes uses one table per code
byte: byte ``j`` of plane ``t`` covers dimensions ``8g .. 8g + 7`` (``g = j mod m/8``), and its
table holds ``w_t * sum_i z[8g + i] * (+1 or -1 by bit i)`` for each of the 256 byte values; a
score is the sum over bytes of one table look-up (compiled in :mod:`embedlab_bebr.scan`, which
also scores two binary codes by popcounts).
"""

from __future__ import annotations

import numpy as np

from embedlab.errors import InvalidInputError

#: ``SIGNS[i, c]`` = +1 when bit ``i`` (big-endian, as numpy.packbits) of byte value ``c`` is set, else -1.
SIGNS = (2.0 * np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).T - 1.0).astype(np.float32)


def level_weights(levels: int) -> np.ndarray:
    """``w_t = 2**-t`` for t = 0..levels-1 (the official code's recurrent weights)."""
    return (0.5 ** np.arange(levels)).astype(np.float32)


def composite_norm2(levels: int, code_dim: int) -> float:
    """``m * sum_t w_t**2``: the mean squared norm of a composite, used to scale scores."""
    return float(code_dim * np.sum(level_weights(levels).astype(np.float64) ** 2))


def code_bytes(levels: int, code_dim: int) -> int:
    """Bytes of one packed code."""
    return levels * code_dim // 8


def pack(signs: np.ndarray) -> np.ndarray:
    """``(levels, n, m)`` signs (> 0 means +1) to ``(n, levels * m / 8)`` uint8 codes."""
    return np.concatenate([np.packbits(plane > 0, axis=1) for plane in signs], axis=1)


def check_codes(codes: object, levels: int, code_dim: int, owner: str) -> np.ndarray:
    """``codes`` as a C-contiguous ``(n, levels * m / 8)`` uint8 array, or InvalidInputError."""
    array = np.asarray(codes)
    width = code_bytes(levels, code_dim)
    if array.dtype != np.uint8 or array.ndim != 2 or array.shape[1] != width:
        raise InvalidInputError(
            f"{owner}: expected uint8 codes of shape (n, {width}) ({levels} bit(s) x {code_dim} "
            f"dimensions), got {array.dtype} {array.shape}; codes made by another compressor (or "
            "another bebr configuration) cannot be read by this one")
    return np.ascontiguousarray(array)


def composite(codes: np.ndarray, levels: int, code_dim: int) -> np.ndarray:
    """``(n, m)`` float32 composite vectors ``sum_t w_t * s_t`` of packed codes."""
    bits = np.unpackbits(codes, axis=1).reshape(len(codes), levels, code_dim)
    signs = 2.0 * bits.astype(np.float32) - 1.0
    return np.einsum("nlm,l->nm", signs, level_weights(levels)).astype(np.float32)


def tables(z: np.ndarray, levels: int) -> np.ndarray:
    """``(levels * m / 8, 256, n_queries)`` per-byte tables of code-space query vectors ``z``."""
    n, m = z.shape
    groups = z.reshape(n, m // 8, 8)
    base = np.einsum("ngi,ic->gcn", groups, SIGNS, optimize=True)  # (m/8, 256, n)
    return np.concatenate([w * base for w in level_weights(levels)], axis=0).astype(np.float32)
