"""Streaming exact top-k over blocks of scores, with ties broken by ascending position."""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from embedlab.ranking import MISSING_SCORE, SearchResult

#: Use the optional numba kernel (:func:`_selection_kernel`) for documents-major blocks when numba is
#: installed; ``EMBEDLAB_NUMBA=0`` turns it off. Both paths return identical results (tested).
ACCELERATE = os.environ.get("EMBEDLAB_NUMBA", "1") != "0"
_KERNEL: Any = None  # the compiled kernel, False when numba is missing

_LAST = np.iinfo(np.int64).max
#: Mask entries tested at once by :func:`_nonzero`.
_SPAN = 512
#: Column groups per result slot for the lower bound of a first block's k-th best score.
_GROUPS_PER_SLOT = 4
#: Consecutive documents whose maximum is compared with a query's cut (documents-major blocks).
_DOC_GROUP = 32
#: Reading one entry of a selected group (strided) costs about this many entries of a full pass.
_GATHER_COST = 8
#: Position field of a packed sort key (:func:`_pack`): positions up to 2**32 - 2; an empty slot
#: (-1) is all ones, so it sorts after every document with the same score.
_POSITION_BITS = 32
_EMPTY = np.uint64((1 << _POSITION_BITS) - 1)


def _nonzero(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.nonzero`` of a sparse 2-d C-contiguous mask, 8 bytes at a time: the words that hold an
    entry (found through spans of 512 entries when few spans hold one), then their bytes."""
    if mask.size % 8:
        return np.nonzero(mask)
    flat = mask.reshape(-1)
    words = flat.view(np.uint64)
    if mask.size % _SPAN:
        hit_words = np.flatnonzero(words)
    else:
        per_span = _SPAN // 8
        spans = np.flatnonzero(words.reshape(-1, per_span).max(axis=1))
        if spans.size * 8 > words.size // per_span:  # dense: scan every word
            hit_words = np.flatnonzero(words)
        else:
            hit_words = (spans[:, None] * per_span + np.arange(per_span)).reshape(-1)
            hit_words = hit_words[words[hit_words] != 0]
    hits = (hit_words[:, None] * 8 + np.arange(8)).reshape(-1)
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

    def push(self, scores: np.ndarray, positions: np.ndarray, rows: slice = slice(None), *,
             docs_major: bool = False) -> None:
        """Offer a ``(n, B)`` float32 block: scores of queries ``rows`` against documents at
        ``positions`` (``(B,)``, ascending); ``docs_major``: the block is ``(B, n)`` instead."""
        base = np.arange(self.scores.shape[0])[rows]
        cut = self.threshold[base]
        kernel = _selection_kernel() if docs_major else None
        if kernel is not None:  # one compiled pass over the block, merged as it goes
            kernel(np.ascontiguousarray(scores), cut, _DOC_GROUP, self.scores, self.positions, base,
                   np.asarray(positions, dtype=np.int64))
            self.threshold[base] = self.scores[base, self.k - 1]
            return
        if docs_major:
            local, cols, values = self._candidates_by_group(scores, cut)
        else:
            local, cols, values = self._candidates_by_mask(scores, cut)
        if local.size:
            first = np.concatenate([[True], local[1:] != local[:-1]])
            self._merge(base[local[first]], np.cumsum(first) - 1, values, positions[cols])

    def _candidates_by_mask(self, scores: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, ...]:
        """(row, column, score) of the entries of a ``(n, B)`` block above ``cut``, by row.

        Rows with fewer than k results so far (cut ``-inf``) keep what reaches a lower bound of
        this block's k-th best score, the k-th largest of the maxima of disjoint column groups (k
        distinct entries reach it), so few entries beyond the k best pass; ``> nextafter(bound,
        -inf)`` is ``>= bound``: one comparison pass for every row."""
        k = self.k
        open_rows = np.flatnonzero(cut == MISSING_SCORE)
        groups = min(_GROUPS_PER_SLOT * k, scores.shape[1] // 2)
        if open_rows.size and groups >= k:
            width = scores.shape[1] - scores.shape[1] % groups
            rows_open = slice(None) if open_rows.size == cut.size else open_rows
            maxima = scores[rows_open, :width].reshape(-1, groups, width // groups).max(axis=2)
            bound = np.partition(maxima, groups - k, axis=1)[:, groups - k]
            cut[rows_open] = np.nextafter(bound, np.float32(MISSING_SCORE))
        if self._mask.size < scores.size:
            self._mask = np.empty(scores.size, dtype=bool)
        mask = np.greater(scores, cut[:, None], out=self._mask[:scores.size].reshape(scores.shape))
        local, cols = _nonzero(mask)  # row-major: local is sorted
        return local, cols, scores[local, cols]

    def _candidates_by_group(self, scores: np.ndarray, cut: np.ndarray) -> tuple[np.ndarray, ...]:
        """:meth:`_candidates_by_mask` for a ``(B, n)`` block: the maxima of groups of
        ``_DOC_GROUP`` consecutive documents per query (one pass, no mask) select the groups
        worth reading; a query without k results yet first takes the k-th largest of its groups'
        maxima as its cut (k distinct entries reach it)."""
        n_docs = scores.shape[0]
        maxima = self._group_maxima(scores, cut)
        group, local = np.nonzero(maxima > cut)
        if group.size * _DOC_GROUP * _GATHER_COST > scores.size:  # many groups to read: one pass
            if self._mask.size < scores.size:
                self._mask = np.empty(scores.size, dtype=bool)
            mask = np.greater(scores, cut, out=self._mask[:scores.size].reshape(scores.shape))
            docs, local = _nonzero(mask)
            values = scores[docs, local]
        else:  # read the groups' entries (strided)
            docs = group[:, None] * _DOC_GROUP + np.arange(_DOC_GROUP)
            inside = docs < n_docs
            docs = np.minimum(docs, n_docs - 1)
            values = scores[docs, local[:, None]]
            keep = inside & (values > cut[local][:, None])
            local = np.broadcast_to(local[:, None], docs.shape)[keep]
            docs, values = docs[keep], values[keep]
        order = np.argsort(local, kind="stable")
        return local[order], docs[order], values[order]

    def _group_maxima(self, scores: np.ndarray, cut: np.ndarray) -> np.ndarray:
        """Maxima ``(groups, n)`` of groups of ``_DOC_GROUP`` consecutive documents of a ``(B, n)``
        block; a query without k results yet first takes the k-th largest of its groups' maxima
        (minus one ulp) as its cut, in place (k distinct entries reach it)."""
        k, (n_docs, n) = self.k, scores.shape
        full = n_docs - n_docs % _DOC_GROUP
        parts = [scores[:full].reshape(-1, _DOC_GROUP, n).max(axis=1)] if full else []
        if full < n_docs:
            parts.append(scores[full:].max(axis=0, keepdims=True))
        maxima = np.concatenate(parts) if len(parts) > 1 else parts[0]
        open_rows = np.flatnonzero(cut == MISSING_SCORE)
        if open_rows.size and maxima.shape[0] >= k:
            bound = np.partition(maxima[:, open_rows], maxima.shape[0] - k, axis=0)[maxima.shape[0] - k]
            cut[open_rows] = np.nextafter(bound, np.float32(MISSING_SCORE))
        return maxima

    def _merge(self, rows: np.ndarray, local: np.ndarray, scores: np.ndarray,
               positions: np.ndarray) -> None:
        """Merge the candidates (``local``: their row among ``rows``, sorted) into those rows."""
        if max(int(positions.max()), int(self.positions[rows].max())) < int(_EMPTY):
            self._merge_packed(rows, local, scores, positions)
            return
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

    def _merge_packed(self, rows: np.ndarray, local: np.ndarray, scores: np.ndarray,
                      positions: np.ndarray) -> None:
        """:meth:`_merge` for positions below 2**32 - 1: one ``np.sort`` of packed
        (score, position) keys per row, padded to the row with the most candidates."""
        k, n = self.k, rows.size
        counts = np.bincount(local, minlength=n)
        slots = np.full((n, k + int(counts.max())), np.iinfo(np.uint64).max, dtype=np.uint64)
        slots[:, :k] = _pack(self.scores[rows], self.positions[rows])
        starts = np.cumsum(counts) - counts
        slots[local, k + np.arange(local.size) - starts[local]] = _pack(scores, positions)
        best_scores, best_positions = _unpack(np.sort(slots, axis=1)[:, :k])
        self.scores[rows] = best_scores
        self.positions[rows] = best_positions
        self.threshold[rows] = best_scores[:, k - 1]

    def result(self) -> SearchResult:
        return SearchResult(self.scores, self.positions)


def _pack(scores: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """uint64 keys that sort as (descending score, ascending position, empty slots last): the
    score's bits made order-preserving (-0.0 counts as 0.0) and inverted, then the position."""
    bits = (scores + np.float32(0)).view(np.uint32)  # float32 scores; + 0 turns -0.0 into 0.0
    ascending = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(1 << 31))
    field = np.where(positions < 0, _EMPTY, positions.astype(np.uint64))
    return (~ascending).astype(np.uint64) << np.uint64(_POSITION_BITS) | field


def _unpack(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores, positions) of :func:`_pack`'s keys."""
    ascending = ~(keys >> np.uint64(_POSITION_BITS)).astype(np.uint32)
    bits = np.where(ascending >> 31 == 1, ascending ^ np.uint32(1 << 31), ~ascending)
    field = (keys & _EMPTY).astype(np.int64)
    return bits.view(np.float32), np.where(field == int(_EMPTY), -1, field)


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


def _selection_kernel() -> Callable[..., None] | None:
    """The numba-compiled selection of documents-major blocks (compiled on first use, cached on
    disk by numba), or None when numba is not installed or ``ACCELERATE`` is off."""
    global _KERNEL
    if not ACCELERATE:
        return None
    if _KERNEL is None:
        try:
            import numba
        except ImportError:
            _KERNEL = False
        else:
            _KERNEL = numba.njit(nogil=True, cache=True, fastmath={"nnan", "nsz"})(_select_hit_groups)
    return _KERNEL or None


def _select_hit_groups(scores: np.ndarray, cut: np.ndarray, group: int, top_scores: np.ndarray,
                       top_positions: np.ndarray, rows: np.ndarray,
                       positions: np.ndarray) -> None:  # pragma: no cover - run compiled by numba
    """Merge into ``top_*[rows[j]]`` the entries of column ``j`` of a ``(B, n)`` block that are
    above ``cut[j]`` (kept sorted: higher score, then lower position): the same result as the numpy
    path (candidates above the cut, then one sort per row) in one pass. The block is read ``group``
    rows at a time: their per-column maxima first (a vectorised pass), then, while those rows are
    still in cache, only the columns whose maximum can still enter their top-k."""
    n_docs, n = scores.shape
    k = top_scores.shape[1]
    kth = np.empty(n, np.float32)  # each column's current k-th score
    for j in range(n):
        kth[j] = top_scores[rows[j], k - 1]
    maxima = np.empty(n, np.float32)
    for first in range(0, n_docs, group):
        stop = min(first + group, n_docs)
        for j in range(n):
            maxima[j] = scores[first, j]
        for d in range(first + 1, stop):
            for j in range(n):
                value = scores[d, j]
                maxima[j] = value if value > maxima[j] else maxima[j]
        for j in range(n):
            floor = cut[j]
            if maxima[j] <= floor or maxima[j] < kth[j]:
                continue
            q = rows[j]
            for d in range(first, stop):
                s, p = scores[d, j], positions[d]
                last_position = top_positions[q, k - 1]
                if s <= floor or s < kth[j] or (s == kth[j] and 0 <= last_position <= p):
                    continue
                i = k - 1
                while i > 0:
                    above, above_position = top_scores[q, i - 1], top_positions[q, i - 1]
                    if s > above or (s == above and (above_position < 0 or p < above_position)):
                        top_scores[q, i], top_positions[q, i] = above, above_position
                        i -= 1
                    else:
                        break
                top_scores[q, i], top_positions[q, i] = s, p
                kth[j] = top_scores[q, k - 1]
