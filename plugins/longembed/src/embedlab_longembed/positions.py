"""Position ids and tables of LongEmbed's training-free context extension for absolute-position
encoders (Zhu et al., 2024, section 4; numpy only).

``n`` is the full input length (special tokens included), ``original`` the window ``Lo`` the model
was used with.

* grouped positions (GP): position ``p`` -> ``p // s`` with ``s = ceil(n / original)``;
* recurrent positions (RP): ``p`` -> ``p mod original``;
* position interpolation (PI): a table of ``original * factor`` rows whose row ``i * factor`` is the
  original row ``i`` and whose rows in between interpolate linearly (past the last original row the
  last row repeats); ordinary positions ``0..n-1`` index it;
* parallel context windows (PCW): the text's tokens cut into windows of ``original - 2`` tokens
  (room for [CLS] and [SEP]), consecutive and disjoint except the last, which is the last
  ``original - 2`` tokens (it overlaps the one before), as LongEmbed's ``get_chunked_docs``.
"""

from __future__ import annotations

import numpy as np


def grouped_positions(n: int, original: int) -> np.ndarray:
    """GP position ids of an input of ``n`` tokens: ``p // ceil(n / original)``, all < ``original``."""
    scale = max(1, -(-n // original))
    return np.arange(n, dtype=np.int64) // scale


def recurrent_positions(n: int, original: int) -> np.ndarray:
    """RP position ids: ``p mod original``."""
    return np.arange(n, dtype=np.int64) % original


def interpolated_table(table: np.ndarray, original: int, factor: int) -> np.ndarray:
    """PI: ``(original * factor, dim)`` rows from the first ``original`` rows of ``table``;
    row ``i * factor`` equals ``table[i]`` bit for bit."""
    if factor < 1 or original < 2 or original > len(table):
        raise ValueError(f"interpolation needs 2 <= original <= {len(table)} and factor >= 1")
    base = np.asarray(table[:original], dtype=np.float64)
    positions = np.arange(original * factor) / factor
    low = np.minimum(np.floor(positions).astype(np.int64), original - 1)
    high = np.minimum(low + 1, original - 1)
    weight = (positions - low)[:, None]
    out = ((1 - weight) * base[low] + weight * base[high]).astype(table.dtype)
    out[::factor] = table[:original]  # exact anchors (no float64 round trip)
    return out


def parallel_windows(n_tokens: int, window: int) -> list[tuple[int, int]]:
    """PCW token ranges of a text of ``n_tokens`` tokens (special tokens not counted)."""
    if window < 1:
        raise ValueError("window must be >= 1")
    if n_tokens <= window:
        return [(0, n_tokens)]
    out = [(a, a + window) for a in range(0, n_tokens - window, window)]
    out.append((n_tokens - window, n_tokens))
    return out
