"""Build kernels (numba): blocks of each pruned posting list and their quantised summaries.

For every posting list (one term):

1. **Shallow clustering** (the paper's blocking): ``max(1, int(centroid_fraction * len))``
   documents of the list (at most 65,535, as in the official code) are drawn as centroids
   (partial Fisher-Yates with a splitmix64 stream seeded by ``(seed, term)``, so the result
   depends neither on chunking nor on threads); every
   document joins the centroid with the largest inner product between the document's
   ``doc_cut`` largest entries and the centroid's full vector (an inverted index over the
   centroids makes this cheap). Clusters of at most ``min_cluster_size`` documents are dissolved
   and their documents re-assigned to the best surviving centroid (if none survives, the list is
   one block). Blocks follow centroid order; documents in a block are in ascending position.
2. **Summaries**: the component-wise maximum over the block's documents, cut to its
   alpha-mass (the fewest largest entries whose sum reaches ``summary_energy`` of the total),
   then quantised to 8 bits: ``code = round((v - min) / step)``, ``step = (max - min) / 255``,
   ``v ~ code * step + min`` with ``min``/``step`` stored per block.
3. **Layout**: a list's summaries are stored transposed, as a small inverted index
   (term -> (local block id, code)), so that all the list's block scores for a query cost one
   binary search per query term plus the matching entries.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from embedlab_seismic.state import LENGTH_BITS, MAX_BLOCKS

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TERM = np.uint64(0xD1B54A32D192ED03)


@njit(cache=True, nogil=True)
def _splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """One step of splitmix64: ``(new state, 64 random bits)``."""
    state = state + _GOLDEN
    z = state
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return state, z ^ (z >> np.uint64(31))


@njit(cache=True, nogil=True)
def _grow(array, needed):  # type: ignore[no-untyped-def]
    """``array`` itself if it holds ``needed`` items, else a copy with at least twice the room."""
    if needed <= array.shape[0]:
        return array
    bigger = np.empty(max(needed, 2 * array.shape[0]), dtype=array.dtype)
    bigger[:array.shape[0]] = array
    return bigger


@njit(cache=True, nogil=True)
def _best_centroid(doc, cut_ptr, cut_terms, cut_vals, head, entry_next, entry_centroid,  # type: ignore[no-untyped-def]
                   entry_value, alive, scores):
    """The surviving centroid with the largest approximate inner product (first on ties)."""
    scores[:] = 0.0
    for p in range(cut_ptr[doc], cut_ptr[doc + 1]):
        value = cut_vals[p]
        e = head[cut_terms[p]]
        while e >= 0:
            scores[entry_centroid[e]] += entry_value[e] * value
            e = entry_next[e]
    best = -1
    for c in range(scores.shape[0]):
        if alive[c] and (best < 0 or scores[c] > scores[best]):
            best = c
    return best


@njit(cache=True, nogil=True)
def _cluster(docs, term, seed, centroid_fraction, min_cluster_size, doc_ptr, doc_terms,  # type: ignore[no-untyped-def]
             doc_vals, cut_ptr, cut_terms, cut_vals, head):
    """Cluster id (0..n_centroids-1) of every document of one posting list."""
    m = docs.shape[0]
    n_centroids = min(m, MAX_BLOCKS, max(1, int(centroid_fraction * m)))
    perm = np.arange(m)
    state = np.uint64(seed) ^ (np.uint64(term) * _TERM)
    for i in range(n_centroids):
        state, bits = _splitmix64(state)
        j = i + np.int64(bits % np.uint64(m - i))
        perm[i], perm[j] = perm[j], perm[i]
    n_entries = 0
    for c in range(n_centroids):
        n_entries += doc_ptr[docs[perm[c]] + 1] - doc_ptr[docs[perm[c]]]
    entry_next = np.empty(n_entries, dtype=np.int64)
    entry_centroid = np.empty(n_entries, dtype=np.int64)
    entry_value = np.empty(n_entries, dtype=np.float32)
    e = 0
    for c in range(n_centroids):
        centroid = docs[perm[c]]
        for p in range(doc_ptr[centroid], doc_ptr[centroid + 1]):
            t = doc_terms[p]
            entry_next[e] = head[t]
            entry_centroid[e] = c
            entry_value[e] = doc_vals[p]
            head[t] = e
            e += 1
    alive = np.ones(n_centroids, dtype=np.bool_)
    scores = np.empty(n_centroids, dtype=np.float32)
    assign = np.empty(m, dtype=np.int64)
    for i in range(m):
        assign[i] = _best_centroid(docs[i], cut_ptr, cut_terms, cut_vals, head, entry_next,
                                   entry_centroid, entry_value, alive, scores)
    sizes = np.bincount(assign, minlength=n_centroids)
    n_alive = 0
    for c in range(n_centroids):
        alive[c] = sizes[c] > min_cluster_size
        if alive[c]:
            n_alive += 1
    if n_alive == 0:
        assign[:] = 0
    elif n_alive < n_centroids:
        for i in range(m):
            if not alive[assign[i]]:
                assign[i] = _best_centroid(docs[i], cut_ptr, cut_terms, cut_vals, head, entry_next,
                                           entry_centroid, entry_value, alive, scores)
    for c in range(n_centroids):
        centroid = docs[perm[c]]
        for p in range(doc_ptr[centroid], doc_ptr[centroid + 1]):
            head[doc_terms[p]] = -1
    return assign, n_centroids


@njit(cache=True, nogil=True)
def _summary(block, doc_ptr, doc_terms, doc_vals, summary_energy, stamp, stamp_id, maxv,  # type: ignore[no-untyped-def]
             touched):
    """Kept terms (ascending) and their 8-bit codes, plus (min, step), of one block's summary."""
    n_touched = 0
    for d in block:
        for p in range(doc_ptr[d], doc_ptr[d + 1]):
            t = doc_terms[p]
            if stamp[t] != stamp_id:
                stamp[t] = stamp_id
                maxv[t] = doc_vals[p]
                touched[n_touched] = t
                n_touched += 1
            elif doc_vals[p] > maxv[t]:
                maxv[t] = doc_vals[p]
    values = maxv[touched[:n_touched]]
    order = np.argsort(-values)
    until = summary_energy * np.sum(values.astype(np.float64))
    acc = 0.0
    n_keep = 0
    while n_keep < order.shape[0]:
        acc += values[order[n_keep]]
        n_keep += 1
        if acc >= until:
            break
    terms = np.sort(touched[order[:n_keep]])
    kept = maxv[terms]
    low = kept.min()
    step = np.float32((kept.max() - low) / np.float32(255.0))
    codes = np.zeros(n_keep, dtype=np.uint8)
    if step > 0:
        for j in range(n_keep):
            codes[j] = np.uint8(min(255.0, np.floor((kept[j] - low) / step + 0.5)))
    return terms, codes, low, step


@njit(cache=True, nogil=True)
def build_lists(t0, t1, list_ptr, list_docs, doc_ptr, doc_terms, doc_vals, cut_ptr, cut_terms,  # type: ignore[no-untyped-def]
                cut_vals, dim, centroid_fraction, min_cluster_size, summary_energy, seed):
    """Blocks and summaries of the posting lists of terms ``t0..t1-1``.

    Returns, with every offset relative to this chunk: ``postings`` (packed documents, see
    :data:`~embedlab_seismic.state.LENGTH_BITS`, block by block),
    ``list_blocks`` (``t1 - t0 + 1``: block range per list), ``block_ptr`` (posting range per
    block), ``block_min``, ``block_step``, ``list_summary_ptr`` (``t1 - t0 + 1``: range of
    ``summary_terms`` per list), ``summary_terms``, ``list_entry_ptr`` (``t1 - t0 + 1``: range of
    summary entries per list), ``summary_ptr`` (first entry of each summary term, relative to
    its list's first entry), ``summary_blocks`` (block id within its list) and ``summary_codes``.
    """
    base = list_ptr[t0]
    n_postings = list_ptr[t1] - base
    postings = np.empty(n_postings, dtype=np.int64)
    list_blocks = np.zeros(t1 - t0 + 1, dtype=np.int64)
    block_ptr = np.zeros(n_postings + 1, dtype=np.int64)
    block_min = np.empty(n_postings, dtype=np.float32)
    block_step = np.empty(n_postings, dtype=np.float32)
    list_summary_ptr = np.zeros(t1 - t0 + 1, dtype=np.int64)
    list_entry_ptr = np.zeros(t1 - t0 + 1, dtype=np.int64)
    summary_terms = np.empty(1024, dtype=np.int32)
    summary_ptr = np.zeros(1024, dtype=np.int32)
    summary_blocks = np.empty(4096, dtype=np.uint16)
    summary_codes = np.empty(4096, dtype=np.uint8)
    head = np.full(dim, -1, dtype=np.int64)
    stamp = np.zeros(dim, dtype=np.int64)
    maxv = np.zeros(dim, dtype=np.float32)
    touched = np.empty(dim, dtype=np.int64)
    n_blocks = 0
    n_terms = 0
    n_entries = 0
    for t in range(t0, t1):
        s, e = list_ptr[t] - base, list_ptr[t + 1] - base
        if e > s:
            docs = list_docs[base + s:base + e]
            assign, n_centroids = _cluster(docs, t, seed, centroid_fraction, min_cluster_size,
                                           doc_ptr, doc_terms, doc_vals, cut_ptr, cut_terms,
                                           cut_vals, head)
            order = np.argsort(assign * np.int64(doc_ptr.shape[0]) + docs)
            sizes = np.bincount(assign, minlength=n_centroids)
            first_block = n_blocks
            pos = s
            for c in range(n_centroids):
                if sizes[c] > 0:
                    block_ptr[n_blocks] = pos
                    pos += sizes[c]
                    n_blocks += 1
            block_ptr[n_blocks] = e
            ordered = docs[order]
            # summaries of this list's blocks, then transposed into term -> (block, code)
            list_terms = np.empty(0, dtype=np.int64)
            list_codes = np.empty(0, dtype=np.uint8)
            list_local = np.empty(0, dtype=np.int32)
            n_list = 0
            for b in range(first_block, n_blocks):
                terms, codes, low, step = _summary(ordered[block_ptr[b] - s:block_ptr[b + 1] - s], doc_ptr,
                                                   doc_terms, doc_vals, summary_energy, stamp,
                                                   b + 1, maxv, touched)
                block_min[b] = low
                block_step[b] = step
                list_terms = _grow(list_terms, n_list + terms.shape[0])
                list_codes = _grow(list_codes, n_list + terms.shape[0])
                list_local = _grow(list_local, n_list + terms.shape[0])
                list_terms[n_list:n_list + terms.shape[0]] = terms
                list_codes[n_list:n_list + terms.shape[0]] = codes
                list_local[n_list:n_list + terms.shape[0]] = b - first_block
                n_list += terms.shape[0]
            for j in range(e - s):
                doc = ordered[j]
                postings[s + j] = (doc_ptr[doc] << LENGTH_BITS) | (doc_ptr[doc + 1] - doc_ptr[doc])
            by_term = np.argsort(list_terms[:n_list] * np.int64(n_blocks - first_block)
                                 + list_local[:n_list])
            summary_blocks = _grow(summary_blocks, n_entries + n_list)
            summary_codes = _grow(summary_codes, n_entries + n_list)
            summary_terms = _grow(summary_terms, n_terms + n_list)
            summary_ptr = _grow(summary_ptr, n_terms + n_list)
            first_entry = n_entries
            previous = -1
            for j in range(n_list):
                x = by_term[j]
                if list_terms[x] != previous:
                    previous = list_terms[x]
                    summary_terms[n_terms] = previous
                    summary_ptr[n_terms] = n_entries - first_entry
                    n_terms += 1
                summary_blocks[n_entries] = list_local[x]
                summary_codes[n_entries] = list_codes[x]
                n_entries += 1
        list_blocks[t - t0 + 1] = n_blocks
        list_summary_ptr[t - t0 + 1] = n_terms
        list_entry_ptr[t - t0 + 1] = n_entries
    return (postings, list_blocks, block_ptr[:n_blocks + 1].copy(), block_min[:n_blocks].copy(),
            block_step[:n_blocks].copy(), list_summary_ptr, summary_terms[:n_terms].copy(),
            list_entry_ptr, summary_ptr[:n_terms].copy(), summary_blocks[:n_entries].copy(),
            summary_codes[:n_entries].copy())
