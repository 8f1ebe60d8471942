"""Graph layout, heaps and distances shared by the build and search kernels (numba).

The graph is stored like FAISS's HNSW, as CSR-like arrays: node ``i`` owns the slots
``neighbors[offsets[i]:offsets[i + 1]]``: ``cap0`` slots for level 0, then ``cap_upper`` slots
for each level ``1..levels[i]``; unused slots hold ``-1`` after the used ones.

Distances are "lower is closer": the negated inner product (``ip``, and ``cosine`` on
normalised vectors) or the squared L2 distance; scores returned to users are their negation.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def slot_range(offsets: np.ndarray, cap0: int, cap_upper: int, node: int, level: int) -> tuple[int, int]:
    """First slot and number of slots of ``node``'s neighbour list at ``level``."""
    if level == 0:
        return offsets[node], cap0
    return offsets[node] + cap0 + (level - 1) * cap_upper, cap_upper


@njit(fastmath=True)
def distance(l2: bool, a: np.ndarray, b: np.ndarray) -> np.float32:
    """Squared L2 distance when ``l2``, else the negated inner product. Not inlined at numba's
    level: a separate function keeps ``fastmath`` (a vectorised reduction), about 2x faster."""
    total = np.float32(0.0)
    if l2:
        for i in range(a.shape[0]):
            diff = a[i] - b[i]
            total += diff * diff
        return total
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return -total


@njit(inline="always")
def heap_push(keys: np.ndarray, values: np.ndarray, size: int, key: float, value: int) -> int:
    """Push onto a max-heap (largest key on top); returns the new size."""
    i = size
    keys[i] = key
    values[i] = value
    while i > 0:
        parent = (i - 1) >> 1
        if keys[parent] >= keys[i]:
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        values[parent], values[i] = values[i], values[parent]
        i = parent
    return size + 1


@njit(inline="always")
def heap_sift_down(keys: np.ndarray, values: np.ndarray, size: int) -> None:
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        if child + 1 < size and keys[child + 1] > keys[child]:
            child += 1
        if keys[i] >= keys[child]:
            return
        keys[child], keys[i] = keys[i], keys[child]
        values[child], values[i] = values[i], values[child]
        i = child


@njit(inline="always")
def heap_pop(keys: np.ndarray, values: np.ndarray, size: int) -> int:
    """Drop the top of a max-heap (read ``keys[0]``/``values[0]`` first); returns the new size."""
    size -= 1
    keys[0] = keys[size]
    values[0] = values[size]
    heap_sift_down(keys, values, size)
    return size


@njit(inline="always")
def heap_replace_top(keys: np.ndarray, values: np.ndarray, size: int, key: float, value: int) -> None:
    keys[0] = key
    values[0] = value
    heap_sift_down(keys, values, size)


@njit(inline="always")
def offer(res_keys: np.ndarray, res_values: np.ndarray, n_res: int, ef: int, cand_keys: np.ndarray,
          cand_values: np.ndarray, n_cand: int, d: float, node: int) -> tuple[int, int]:
    """HNSW beam step for a newly visited node at distance ``d``: when it is among the ``ef``
    closest results so far it becomes a result and a candidate to expand. Results live in a
    max-heap of distances (farthest on top), candidates in a max-heap of negated distances
    (closest on top)."""
    if n_res < ef or d < res_keys[0]:
        n_cand = heap_push(cand_keys, cand_values, n_cand, -d, node)
        if n_res < ef:
            n_res = heap_push(res_keys, res_values, n_res, d, node)
        else:
            heap_replace_top(res_keys, res_values, n_res, d, node)
    return n_res, n_cand
