"""ACORN-gamma construction (numba): HNSW insertion with a wide beam (``ef = M * gamma``) and
the predicate-agnostic compression of level-0 neighbour lists.

Compression of a candidate list sorted by distance: the first ``M_beta`` candidates are always
kept; a later candidate is dropped when it is already covered, i.e. a neighbour of a kept
candidate from position ``M_beta`` on; the list ends when it is full (``M_beta + 1.5 M`` slots)
or when the kept nodes and the nodes they cover number ``M * gamma``. At search time the
neighbours of those later candidates are scanned again (the 2-hop expansion), which recovers
what was dropped: the compressed list stands for the ``M * gamma`` nearest candidates.
(The official code stops the coverage at the list capacity instead of ``M * gamma``; on
clustered data that left 5 %-selective searches at recall 0.28 where this reaches 0.99, see
the plugin README.) Lists are kept closest first; insertion is sequential, so a build is
deterministic.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from embedlab_filtered.graph.layout import distance, heap_pop, heap_push, offer, slot_range


@njit(cache=True)
def compress(ids: np.ndarray, count: int, max_size: int, budget: int, m_beta: int, offsets: np.ndarray,
             neighbors: np.ndarray, cap0: int, covered: np.ndarray, stamp: int, out: np.ndarray) -> int:
    """ACORN's level-0 compression of ``ids[:count]`` (closest first) into ``out``; returns
    the number kept. ``covered`` holds ``stamp`` for nodes reached by the kept ones."""
    kept = 0
    n_covered = 0
    for i in range(count):
        node = ids[i]
        if i >= m_beta and covered[node] == stamp:
            continue
        out[kept] = node
        kept += 1
        if kept >= max_size:
            break
        if covered[node] != stamp:
            covered[node] = stamp
            n_covered += 1
        if i >= m_beta:
            start = offsets[node]
            for j in range(cap0):
                other = neighbors[start + j]
                if other < 0:
                    break
                if covered[other] != stamp:
                    covered[other] = stamp
                    n_covered += 1
        if n_covered >= budget:
            break
    return kept


@njit(cache=True)
def greedy(vectors: np.ndarray, l2: bool, x: np.ndarray, offsets: np.ndarray, neighbors: np.ndarray,
           cap0: int, cap_upper: int, level: int, node: int, d_node: float) -> tuple[int, float]:
    """Move to the closest neighbour at ``level`` while that gets closer to ``x``."""
    while True:
        previous = node
        start, width = slot_range(offsets, cap0, cap_upper, previous, level)
        for j in range(width):
            other = neighbors[start + j]
            if other < 0:
                break
            d = distance(l2, x, vectors[other])
            if d < d_node:
                node, d_node = other, d
        if node == previous:
            return node, d_node


@njit(cache=True)
def beam(vectors: np.ndarray, l2: bool, x: np.ndarray, offsets: np.ndarray, neighbors: np.ndarray,
         cap0: int, cap_upper: int, level: int, entry: int, d_entry: float, ef: int, visited: np.ndarray,
         stamp: int, cand_keys: np.ndarray, cand_values: np.ndarray, res_keys: np.ndarray,
         res_values: np.ndarray) -> int:
    """Unfiltered HNSW beam search at ``level``; the ``ef`` closest nodes end in the result heap
    (returns their number)."""
    visited[entry] = stamp
    n_res = heap_push(res_keys, res_values, 0, d_entry, entry)
    n_cand = heap_push(cand_keys, cand_values, 0, -d_entry, entry)
    while n_cand > 0:
        d_best, best = -cand_keys[0], cand_values[0]
        n_cand = heap_pop(cand_keys, cand_values, n_cand)
        if n_res >= ef and d_best > res_keys[0]:
            break
        start, width = slot_range(offsets, cap0, cap_upper, best, level)
        for j in range(width):
            other = neighbors[start + j]
            if other < 0:
                break
            if visited[other] == stamp:
                continue
            visited[other] = stamp
            d = distance(l2, x, vectors[other])
            n_res, n_cand = offer(res_keys, res_values, n_res, ef, cand_keys, cand_values, n_cand, d, other)
    return n_res


@njit(cache=True)
def add_link(vectors: np.ndarray, l2: bool, offsets: np.ndarray, neighbors: np.ndarray, cap0: int,
             cap_upper: int, m_beta: int, src: int, dest: int, level: int, covered: np.ndarray,
             stamp: int, pool_keys: np.ndarray, pool_values: np.ndarray, out: np.ndarray) -> None:
    """Add the edge ``src -> dest``: append it while ``src``'s list has room, else re-select
    the list among the old neighbours and ``dest`` (compression at level 0, the closest at
    upper levels)."""
    start, width = slot_range(offsets, cap0, cap_upper, src, level)
    if neighbors[start + width - 1] < 0:
        j = 0
        while neighbors[start + j] >= 0:
            j += 1
        neighbors[start + j] = dest
        return
    x = vectors[src]
    for j in range(width):
        pool_values[j] = neighbors[start + j]
        pool_keys[j] = distance(l2, x, vectors[pool_values[j]])
    pool_values[width] = dest
    pool_keys[width] = distance(l2, x, vectors[dest])
    order = np.argsort(pool_keys[:width + 1], kind="mergesort")
    ids = pool_values[:width + 1][order]
    if level == 0:
        kept = compress(ids, width + 1, width, cap_upper, m_beta, offsets, neighbors, cap0, covered, stamp, out)
    else:
        kept = width
        out[:kept] = ids[:kept]
    neighbors[start:start + kept] = out[:kept]
    neighbors[start + kept:start + width] = -1


@njit(cache=True)
def insert(vectors: np.ndarray, l2: bool, levels: np.ndarray, offsets: np.ndarray, neighbors: np.ndarray,
           cap0: int, cap_upper: int, m_beta: int, ef: int, first: int, last: int, entry: int,
           max_level: int) -> tuple[int, int]:
    """Insert nodes ``first..last-1`` (their slots already allocated, filled with -1); returns
    the new entry point and top level."""
    n = vectors.shape[0]
    marks = np.zeros(n, np.int32)  # visited / covered flags: equal to the current stamp
    stamp = 0
    cand_keys = np.empty(n + 1, np.float32)
    cand_values = np.empty(n + 1, np.int32)
    res_keys = np.empty(ef + 1, np.float32)
    res_values = np.empty(ef + 1, np.int32)
    width = max(ef, cap0, cap_upper) + 1
    pool_keys = np.empty(width, np.float32)
    pool_values = np.empty(width, np.int32)
    chosen = np.empty(width, np.int32)
    out = np.empty(width, np.int32)
    for node in range(first, last):
        x = vectors[node]
        top = levels[node]
        if entry < 0:
            entry, max_level = node, top
            continue
        nearest = entry
        d_nearest = distance(l2, x, vectors[entry])
        for level in range(max_level, top, -1):
            nearest, d_nearest = greedy(vectors, l2, x, offsets, neighbors, cap0, cap_upper, level,
                                        nearest, d_nearest)
        for level in range(min(top, max_level), -1, -1):
            stamp += 1
            n_res = beam(vectors, l2, x, offsets, neighbors, cap0, cap_upper, level, nearest, d_nearest,
                         ef, marks, stamp, cand_keys, cand_values, res_keys, res_values)
            order = np.argsort(res_keys[:n_res], kind="mergesort")
            ids = res_values[:n_res][order]
            nearest, d_nearest = ids[0], res_keys[order[0]]
            if level == 0:
                stamp += 1
                kept = compress(ids, n_res, cap0, cap_upper, m_beta, offsets, neighbors, cap0, marks, stamp, chosen)
            else:
                kept = min(n_res, cap_upper)
                chosen[:kept] = ids[:kept]
            start, _ = slot_range(offsets, cap0, cap_upper, node, level)
            neighbors[start:start + kept] = chosen[:kept]
            for j in range(kept):
                stamp += 1
                add_link(vectors, l2, offsets, neighbors, cap0, cap_upper, m_beta, chosen[j], node, level,
                         marks, stamp, pool_keys, pool_values, out)
        if top > max_level:
            entry, max_level = node, top
    return entry, max_level
