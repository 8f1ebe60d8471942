"""Query kernel (numba): Seismic's block-skipping traversal of the inverted index.

For each query, the ``query_cut`` largest query entries are visited in decreasing value. For a
visited term, the inner products of the whole query with all the term's (dequantised) block
summaries are computed; a block is skipped when the top-k heap is full and its summary score is
below ``heap_factor`` times the current k-th best score (the official implementation's rule:
``heap_factor`` <= 1 lowers the bar, so smaller values skip less and are more accurate).
Otherwise every document of the block not yet seen by this query is scored exactly from the
forward index and offered to the heap. With ``first_sorted``, the blocks of the first list are
visited in decreasing summary score.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from embedlab_seismic.prefetch import prefetch
from embedlab_seismic.state import LENGTH_BITS, LENGTH_MASK


@njit(cache=True, nogil=True)
def _worse(score_a, doc_a, score_b, doc_b):  # type: ignore[no-untyped-def]
    """Whether (score_a, doc_a) ranks below (score_b, doc_b): lower score, or a tie and higher doc."""
    return score_a < score_b or (score_a == score_b and doc_a > doc_b)


@njit(cache=True, nogil=True)
def _sift_down(heap_s, heap_d, size, i):  # type: ignore[no-untyped-def]
    while True:
        child = 2 * i + 1
        if child >= size:
            return
        if child + 1 < size and _worse(heap_s[child + 1], heap_d[child + 1], heap_s[child], heap_d[child]):
            child += 1
        if not _worse(heap_s[child], heap_d[child], heap_s[i], heap_d[i]):
            return
        heap_s[i], heap_s[child] = heap_s[child], heap_s[i]
        heap_d[i], heap_d[child] = heap_d[child], heap_d[i]
        i = child


@njit(cache=True, nogil=True)
def _push(heap_s, heap_d, size, k, score, doc):  # type: ignore[no-untyped-def]
    """Offer (score, doc) to the min-heap of the k best; returns the new size."""
    if size < k:
        i = size
        heap_s[i] = score
        heap_d[i] = doc
        while i > 0:
            parent = (i - 1) // 2
            if not _worse(heap_s[i], heap_d[i], heap_s[parent], heap_d[parent]):
                break
            heap_s[i], heap_s[parent] = heap_s[parent], heap_s[i]
            heap_d[i], heap_d[parent] = heap_d[parent], heap_d[i]
            i = parent
        return size + 1
    if _worse(heap_s[0], heap_d[0], score, doc):
        heap_s[0] = score
        heap_d[0] = doc
        _sift_down(heap_s, heap_d, size, 0)
    return size


@njit(cache=True, nogil=True)
def _top_terms(q_vals, a, b, query_cut, cut):  # type: ignore[no-untyped-def]
    """Offsets (from ``a``) of the ``query_cut`` largest of ``q_vals[a:b]`` into ``cut``, largest
    first, ties to the lower term id (partial selection sort: queries are short)."""
    n = min(query_cut, b - a)
    taken = np.zeros(b - a, dtype=np.bool_)
    for r in range(n):
        best = -1
        for j in range(b - a):
            if not taken[j] and (best < 0 or q_vals[a + j] > q_vals[a + best]):
                best = j
        taken[best] = True
        cut[r] = best
    return n


@njit(cache=True, nogil=True)
def _block_scores(dots, n_blocks, b0, s0, s1, e0, e1, a, b, q_terms, q_vals, summary_terms,  # type: ignore[no-untyped-def]
                  summary_ptr, summary_blocks, summary_codes, block_min, block_step):
    """Inner products of the query with the dequantised summaries of one list's blocks."""
    dots[:n_blocks] = 0.0
    lo = s0
    for p in range(a, b):
        qt = q_terms[p]
        hi = s1
        while lo < hi:  # query terms ascend: search only after the previous hit
            mid = (lo + hi) >> 1
            if summary_terms[mid] < qt:
                lo = mid + 1
            else:
                hi = mid
        if lo == s1:
            return
        if summary_terms[lo] != qt:
            continue
        qv = q_vals[p]
        end = e0 + summary_ptr[lo + 1] if lo + 1 < s1 else e1
        for x in range(e0 + summary_ptr[lo], end):
            local = summary_blocks[x]
            dots[local] += qv * (np.float32(summary_codes[x]) * block_step[b0 + local] + block_min[b0 + local])


@njit(cache=True, nogil=True)
def search_range(q0, q1, q_ptr, q_terms, q_vals, k, query_cut, heap_factor, first_sorted,  # type: ignore[no-untyped-def]
                 doc_ptr, doc_entries, list_blocks, block_ptr, postings, block_min,
                 block_step, list_summary_ptr, summary_terms, list_entry_ptr, summary_ptr,
                 summary_blocks, summary_codes, mask, max_blocks, out_scores, out_docs):
    """Answer queries ``q0..q1-1`` into rows of ``out_scores`` / ``out_docs`` (pre-filled with
    ``-inf`` / ``-1``). ``mask`` is ``(0, n)`` (no filter), ``(1, n)`` or ``(n_queries, n)``.

    A posting is ``start << LENGTH_BITS | length`` of its document's forward-index entries
    (``doc_entries`` interleaves term ids and float32 value bits), so scoring needs no
    ``doc_ptr`` lookup and one cache line holds a short document; a bitset over entry offsets
    marks visited documents and the heap holds offsets (ordered like positions), turned into
    positions at the end. A block's new documents are collected (and prefetched) first, then
    scored, so that their memory loads overlap.
    """
    dim = list_blocks.shape[0] - 1
    doc_vals = doc_entries.view(np.float32)
    q_dense = np.zeros(dim, dtype=np.float32)
    seen = np.zeros((doc_entries.shape[0] >> 7) + 1, dtype=np.uint64)
    visited = np.empty(doc_ptr.shape[0], dtype=np.int64)
    heap_s = np.empty(k, dtype=np.float32)
    heap_d = np.empty(k, dtype=np.int64)
    dots = np.empty(max(max_blocks, 1), dtype=np.float32)
    identity = np.arange(max(max_blocks, 1))
    cut = np.empty(query_cut, dtype=np.int64)
    filtered = mask.shape[0] > 0
    longest = 1
    for x in range(block_ptr.shape[0] - 1):
        longest = max(longest, block_ptr[x + 1] - block_ptr[x])
    fresh = np.empty(longest, dtype=np.int64)
    for qi in range(q0, q1):
        a, b = q_ptr[qi], q_ptr[qi + 1]
        if a == b:
            continue
        mask_row = qi if mask.shape[0] > 1 else 0
        for p in range(a, b):
            q_dense[q_terms[p]] = q_vals[p]
        n_cut = _top_terms(q_vals, a, b, query_cut, cut)
        size = 0
        n_visited = 0
        for r in range(n_cut):
            term = q_terms[a + cut[r]]
            b0 = list_blocks[term]
            n_blocks = list_blocks[term + 1] - b0
            if n_blocks == 0:
                continue
            _block_scores(dots, n_blocks, b0, list_summary_ptr[term], list_summary_ptr[term + 1],
                          list_entry_ptr[term], list_entry_ptr[term + 1], a, b, q_terms, q_vals,
                          summary_terms, summary_ptr, summary_blocks, summary_codes, block_min,
                          block_step)
            visit = np.argsort(-dots[:n_blocks]) if first_sorted and r == 0 else identity[:n_blocks]
            for j in range(n_blocks):
                local = visit[j]
                if size == k and dots[local] < heap_factor * heap_s[0]:
                    continue
                n_new = 0
                for p in range(block_ptr[b0 + local], block_ptr[b0 + local + 1]):
                    start = postings[p] >> LENGTH_BITS
                    word = start >> 6
                    bit = np.uint64(1) << np.uint64(start & 63)
                    if seen[word] & bit:
                        continue
                    seen[word] |= bit
                    visited[n_visited] = word
                    n_visited += 1
                    if filtered and not mask[mask_row, np.searchsorted(doc_ptr, start, side="right") - 1]:
                        continue
                    prefetch(doc_entries, 2 * start)
                    fresh[n_new] = postings[p]
                    n_new += 1
                for j2 in range(n_new):
                    start = fresh[j2] >> LENGTH_BITS
                    score = np.float32(0.0)
                    for x in range(2 * start, 2 * (start + (fresh[j2] & LENGTH_MASK)), 2):
                        score += q_dense[doc_entries[x]] * doc_vals[x + 1]
                    size = _push(heap_s, heap_d, size, k, score, start)
        for p in range(a, b):
            q_dense[q_terms[p]] = 0.0
        for j in range(n_visited):
            seen[visited[j]] = 0
        for j in range(size - 1, -1, -1):  # pop the worst into the last free slot
            out_scores[qi, j] = heap_s[0]
            out_docs[qi, j] = np.searchsorted(doc_ptr, heap_d[0], side="right") - 1
            heap_s[0] = heap_s[j]
            heap_d[0] = heap_d[j]
            _sift_down(heap_s, heap_d, j, 0)
