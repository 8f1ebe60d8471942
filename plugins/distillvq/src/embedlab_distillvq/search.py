"""Inverted lists and the IVF-ADC search kernel (numba, one query per parallel iteration)."""

from __future__ import annotations

import numba
import numpy as np

from embedlab.ranking import MISSING_SCORE


def inverted_lists(lists: np.ndarray, nlist: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, order)``: documents of list ``l`` are ``order[offsets[l]:offsets[l + 1]]``
    (ascending positions inside a list)."""
    order = np.argsort(lists, kind="stable").astype(np.int64)
    offsets = np.zeros(nlist + 1, dtype=np.int64)
    np.cumsum(np.bincount(lists, minlength=nlist), out=offsets[1:])
    return offsets, order


@numba.njit(parallel=True, cache=True)
def _search(tables, coarse, probes, offsets, order, codes, mask, k, out_scores, out_ids):  # pragma: no cover
    n_queries, m = tables.shape[0], codes.shape[1]
    mask_rows = mask.shape[0]
    for qi in numba.prange(n_queries):
        total = 0
        for p in range(probes.shape[1]):
            total += offsets[probes[qi, p] + 1] - offsets[probes[qi, p]]
        scores = np.empty(total, dtype=np.float32)
        ids = np.empty(total, dtype=np.int64)
        row = np.int64(0)
        if mask_rows > 1:
            row = np.int64(qi)
        n = 0
        for p in range(probes.shape[1]):
            lst = probes[qi, p]
            base = coarse[qi, lst]
            for r in range(offsets[lst], offsets[lst + 1]):
                doc = order[r]
                if mask_rows > 0 and not mask[row, doc]:
                    continue
                s = np.float32(0.0)
                for j in range(m):
                    s += tables[qi, j, codes[doc, j]]
                scores[n] = base + s
                ids[n] = doc
                n += 1
        scores, ids = scores[:n], ids[:n]
        if n > 4 * k:
            cut = -np.partition(-scores, k - 1)[k - 1]
            keep = scores >= cut
            scores, ids = scores[keep], ids[keep]
        by_id = np.argsort(ids, kind="mergesort")
        scores, ids = scores[by_id], ids[by_id]
        best = np.argsort(-scores, kind="mergesort")
        kk = min(k, best.shape[0])
        for i in range(kk):
            out_scores[qi, i] = scores[best[i]]
            out_ids[qi, i] = ids[best[i]]


def ivf_adc_search(tables: np.ndarray, coarse: np.ndarray, nprobe: int, offsets: np.ndarray,
                   order: np.ndarray, codes: np.ndarray, mask: np.ndarray | None,
                   k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` ``(scores, positions)`` per query: probe the ``nprobe`` lists of largest coarse
    score, score each document as ``coarse[list] + sum_j tables[j, code_j]``; ties go to the
    lower position; missing results are ``-inf``/``-1``. ``mask``: ``(n_docs,)`` or
    ``(n_queries, n_docs)`` booleans (False = never returned)."""
    n_queries = tables.shape[0]
    nprobe = min(nprobe, coarse.shape[1])
    probes = np.argpartition(-coarse, nprobe - 1, axis=1)[:, :nprobe].astype(np.int64)
    mask2 = np.ones((0, 0), dtype=np.bool_) if mask is None else np.atleast_2d(mask)
    out_scores = np.full((n_queries, k), MISSING_SCORE, dtype=np.float32)
    out_ids = np.full((n_queries, k), -1, dtype=np.int64)
    _search(np.ascontiguousarray(tables, dtype=np.float32), np.ascontiguousarray(coarse, dtype=np.float32),
            probes, offsets, order, codes, mask2, k, out_scores, out_ids)
    return out_scores, out_ids
