"""ACORN predicate-filtered search (numba), one query per loop iteration, queries in parallel.

Only documents that pass the query's mask get a distance computed or enter the beam. Upper
levels: greedy descent that moves to passing neighbours (up to ``M`` of them per step; the entry
point is accepted even when it fails). Level 0: beam search of width ``ef``; expanding a node
scans its neighbours and, for those from position ``M_beta`` on (all of them when
``gamma == 1``), their neighbours too (the 2-hop expansion), stopping once ``2 M`` passing nodes
were seen. ACORN-1 (``gamma == 1``) also expands 2 hops in the descent.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from embedlab_filtered.graph.layout import distance, heap_pop, heap_push, offer, slot_range


@njit(cache=True)
def descend(vectors: np.ndarray, l2: bool, x: np.ndarray, passing: np.ndarray, offsets: np.ndarray,
            neighbors: np.ndarray, cap0: int, cap_upper: int, gamma: int, level: int, node: int,
            d_node: float) -> tuple[int, float]:
    """Greedy descent step at an upper level over passing nodes (2 hops when ``gamma == 1``);
    a failing current node is left for the first passing one met."""
    while True:
        previous = node
        start, width = slot_range(offsets, cap0, cap_upper, previous, level)
        for j in range(width):
            other = neighbors[start + j]
            if other < 0:
                break
            if passing[other]:
                d = distance(l2, x, vectors[other])
                if d < d_node or not passing[node]:
                    node, d_node = other, d
            if gamma == 1:
                start2, width2 = slot_range(offsets, cap0, cap_upper, other, level)
                for j2 in range(width2):
                    second = neighbors[start2 + j2]
                    if second < 0:
                        break
                    if passing[second]:
                        d = distance(l2, x, vectors[second])
                        if d < d_node or not passing[node]:
                            node, d_node = second, d
        if node == previous:
            return node, d_node


@njit(cache=True)
def filtered_beam(vectors: np.ndarray, l2: bool, x: np.ndarray, passing: np.ndarray, offsets: np.ndarray,
                  neighbors: np.ndarray, cap0: int, m: int, m_beta: int, gamma: int, entry: int,
                  d_entry: float, ef: int, visited: np.ndarray, stamp: int, cand_keys: np.ndarray,
                  cand_values: np.ndarray, res_keys: np.ndarray, res_values: np.ndarray) -> int:
    """Level-0 ACORN beam search; the (at most ``ef``) closest passing nodes end in the
    result heap (returns their number)."""
    visited[entry] = stamp
    n_cand = heap_push(cand_keys, cand_values, 0, -d_entry, entry)
    n_res = heap_push(res_keys, res_values, 0, d_entry, entry) if passing[entry] else 0
    limit = 2 * m
    while n_cand > 0:
        d_best, best = -cand_keys[0], cand_values[0]
        n_cand = heap_pop(cand_keys, cand_values, n_cand)
        if n_res >= ef and d_best > res_keys[0]:
            break
        found = 0
        expand = True
        start = offsets[best]
        for j in range(cap0):
            other = neighbors[start + j]
            if other < 0:
                break
            if passing[other]:
                found += 1
                if visited[other] == stamp:
                    continue
                visited[other] = stamp
                d = distance(l2, x, vectors[other])
                n_res, n_cand = offer(res_keys, res_values, n_res, ef, cand_keys, cand_values, n_cand, d, other)
                if found >= limit:
                    break
            if gamma == 1 or (expand and j >= m_beta):
                start2 = offsets[other]
                for j2 in range(cap0):
                    second = neighbors[start2 + j2]
                    if second < 0:
                        break
                    if not passing[second]:
                        continue
                    found += 1
                    if visited[second] == stamp:
                        continue
                    visited[second] = stamp
                    d = distance(l2, x, vectors[second])
                    n_res, n_cand = offer(res_keys, res_values, n_res, ef, cand_keys, cand_values, n_cand,
                                          d, second)
                    if found >= limit:
                        expand = False
                        break
    return n_res


@njit(parallel=True, cache=True)
def search(vectors: np.ndarray, l2: bool, queries: np.ndarray, k: int, ef: int, masks: np.ndarray,
           mask_rows: np.ndarray, active: np.ndarray, offsets: np.ndarray, neighbors: np.ndarray, cap0: int,
           cap_upper: int, m: int, m_beta: int, gamma: int, entry: int, max_level: int, chunk: int,
           out_scores: np.ndarray, out_ids: np.ndarray) -> None:
    """Search every ``active`` query under its mask ``masks[mask_rows[q]]``; writes the top-``k``
    scores (negated distances) and positions, closest first, into the ``out`` arrays."""
    n_queries = queries.shape[0]
    n = vectors.shape[0]
    n_chunks = (n_queries + chunk - 1) // chunk
    for c in prange(n_chunks):
        visited = np.zeros(n, np.int32)
        cand_keys = np.empty(n + 1, np.float32)
        cand_values = np.empty(n + 1, np.int32)
        res_keys = np.empty(ef + 1, np.float32)
        res_values = np.empty(ef + 1, np.int32)
        stamp = 0
        for q in range(c * chunk, min(n_queries, (c + 1) * chunk)):
            if not active[q]:
                continue
            x = queries[q]
            passing = masks[mask_rows[q]]
            node = entry
            d_node = distance(l2, x, vectors[entry])
            for level in range(max_level, 0, -1):
                node, d_node = descend(vectors, l2, x, passing, offsets, neighbors, cap0, cap_upper, gamma,
                                       level, node, d_node)
            stamp += 1
            n_res = filtered_beam(vectors, l2, x, passing, offsets, neighbors, cap0, m, m_beta, gamma, node,
                                  d_node, ef, visited, stamp, cand_keys, cand_values, res_keys, res_values)
            order = np.argsort(res_keys[:n_res], kind="mergesort")
            for j in range(min(k, n_res)):
                out_scores[q, j] = -res_keys[order[j]]
                out_ids[q, j] = res_values[order[j]]
