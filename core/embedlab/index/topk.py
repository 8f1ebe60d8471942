"""Streaming exact top-k over blocks of scores, with ties broken by ascending position."""

from __future__ import annotations

import numpy as np

from embedlab.ranking import MISSING_SCORE, SearchResult

_LAST = np.iinfo(np.int64).max


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a sparse 2-d C-contiguous mask, scanning 8 bytes at a time."""
    if mask.size % 8:
        return np.nonzero(mask)
    flat = mask.reshape(-1)
    words = np.flatnonzero(flat.view(np.uint64))
    hits = (words[:, None] * 8 + np.arange(8)).reshape(-1)
    hits = hits[flat[hits]]
    return np.divmod(hits, mask.shape[1])


class TopK:
    """Keeps the k best (score, position) pairs of every query while blocks stream in.

    Higher scores win; equal scores go to the lower position. ``-inf`` scores mark documents
    that must not be returned (filtered out, or unmatched). A block is reduced without sorting
    it: only entries above the query's current k-th best score are extracted (in the first block,
    those reaching a lower bound of its k-th best), then merged with a small lexsort.
    """

    def __init__(self, n_queries: int, k: int) -> None:
        self.k = k
        self.scores = np.full((n_queries, k), MISSING_SCORE, dtype=np.float32)
        self.positions = np.full((n_queries, k), -1, dtype=np.int64)
        self.threshold = np.full(n_queries, MISSING_SCORE, dtype=np.float32)
        self._mask = np.empty(0, dtype=bool)  # reused between blocks

    def push(self, scores: np.ndarray, positions: np.ndarray, rows: slice = slice(None)) -> None:
        """Offer a ``(n, B)`` float32 block: scores of queries ``rows`` against documents at
        ``positions`` (``(B,)``, ascending)."""
        k = self.k
        base = np.arange(self.scores.shape[0])[rows]
        cut = self.threshold[base]
        if self._mask.size < scores.size:
            self._mask = np.empty(scores.size, dtype=bool)
        mask = np.greater(scores, cut[:, None], out=self._mask[:scores.size].reshape(scores.shape))
        open_rows = np.flatnonzero(cut == MISSING_SCORE)
        if open_rows.size and scores.shape[1] >= 2 * k:
            # Fewer than k results so far: keep what reaches a lower bound of this block's k-th
            # best score, the smallest of the maxima of k disjoint column groups (k distinct
            # entries reach it): one pass, no partition, and few entries beyond the k best.
            width = scores.shape[1] - scores.shape[1] % k
            rows_open = slice(None) if open_rows.size == cut.size else open_rows
            groups = scores[rows_open, :width].reshape(-1, k, width // k)
            bound = groups.max(axis=2).min(axis=1)
            mask[rows_open] &= scores[rows_open] >= bound[:, None]
        local, cols = _nonzero(mask)  # row-major: local is sorted
        if local.size:
            first = np.concatenate([[True], local[1:] != local[:-1]])
            self._merge(base[local[first]], np.cumsum(first) - 1, scores[local, cols], positions[cols])

    def _merge(self, rows: np.ndarray, local: np.ndarray, scores: np.ndarray,
               positions: np.ndarray) -> None:
        k, n = self.k, rows.size
        group = np.concatenate([np.repeat(np.arange(n), k), local])
        all_scores = np.concatenate([self.scores[rows].reshape(-1), scores])
        all_positions = np.concatenate([self.positions[rows].reshape(-1), positions])
        tie = np.where(all_positions < 0, _LAST, all_positions)
        order = np.lexsort((tie, -all_scores, group))
        counts = np.bincount(group, minlength=n)
        rank = np.arange(order.size) - np.repeat(np.cumsum(counts) - counts, counts)
        keep = order[rank < k]
        best = all_scores[keep].reshape(n, k)
        self.scores[rows] = best
        self.positions[rows] = all_positions[keep].reshape(n, k)
        self.threshold[rows] = best[:, k - 1]

    def result(self) -> SearchResult:
        return SearchResult(self.scores, self.positions)


def merge_results(results: list[SearchResult], k: int) -> SearchResult:
    """Exact top-``k`` of the union of several results over disjoint documents (for example one
    per shard, positions already global): higher scores first, equal scores to the lower
    position, empty slots (position -1) last, as a single index would have returned them."""
    scores = np.concatenate([np.asarray(r.scores, dtype=np.float32) for r in results], axis=1)
    positions = np.concatenate([np.asarray(r.indices, dtype=np.int64) for r in results], axis=1)
    tie = np.where(positions < 0, _LAST, positions)
    order = np.lexsort((tie, -scores), axis=1)[:, :k]
    best_scores = np.take_along_axis(scores, order, axis=1)
    best_positions = np.take_along_axis(positions, order, axis=1)
    if best_scores.shape[1] < k:  # fewer candidates than k: pad
        pad = k - best_scores.shape[1]
        best_scores = np.pad(best_scores, ((0, 0), (0, pad)), constant_values=MISSING_SCORE)
        best_positions = np.pad(best_positions, ((0, 0), (0, pad)), constant_values=-1)
    return SearchResult(best_scores, best_positions)
