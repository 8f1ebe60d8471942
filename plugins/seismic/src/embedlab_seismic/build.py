"""Index construction: prune, then block and summarise the posting lists chunk by chunk."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from embedlab.errors import InvalidInputError
from embedlab_seismic.blocks import build_lists
from embedlab_seismic.config import SeismicConfig
from embedlab_seismic.pruning import prune, top_entries
from embedlab_seismic.state import LENGTH_MASK, MAX_ENTRIES, SeismicArrays

#: Postings per build chunk (a chunk is one numba call and one progress-bar step).
CHUNK_POSTINGS = 50_000
MAX_CHUNKS = 256
#: Postings from which the build shows a progress bar.
PROGRESS_POSTINGS = 500_000


def _chunks(list_ptr: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive term ranges holding about the same number of postings."""
    dim, total = list_ptr.size - 1, int(list_ptr[-1])
    n_chunks = int(np.clip(total // CHUNK_POSTINGS, 1, min(MAX_CHUNKS, dim)))
    cuts = np.searchsorted(list_ptr, np.linspace(0, total, n_chunks + 1)[1:-1], side="right")
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts, dim), [dim]]))
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def build_arrays(documents: sp.csr_matrix, config: SeismicConfig) -> SeismicArrays:
    """All index arrays for canonical float32 CSR ``documents`` (int32 term ids, no zeros)."""
    n_docs, dim = documents.shape
    doc_ptr = documents.indptr.astype(np.int64)
    longest = int(np.diff(doc_ptr).max(initial=0))
    if longest > LENGTH_MASK or documents.nnz >= MAX_ENTRIES:
        raise InvalidInputError(f"seismic documents: {longest} entries in one document (at most "
                                f"{LENGTH_MASK}) or {documents.nnz} in all (at most {MAX_ENTRIES - 1})")
    doc_terms, doc_vals = documents.indices, documents.data
    list_ptr, list_docs = prune(documents, config.n_postings, config.pruning, config.max_fraction)
    cut_ptr, cut_terms, cut_vals = top_entries(documents, config.doc_cut)

    def run(chunk: tuple[int, int]) -> tuple[np.ndarray, ...]:
        return build_lists(chunk[0], chunk[1], list_ptr, list_docs, doc_ptr, doc_terms, doc_vals,
                           cut_ptr, cut_terms, cut_vals, dim, float(config.centroid_fraction),
                           config.min_cluster_size, float(config.summary_energy), config.seed)

    chunks = _chunks(list_ptr)
    with ThreadPoolExecutor(config.n_threads) as pool:
        parts = list(tqdm(pool.map(run, chunks), total=len(chunks), desc="seismic build",
                          unit="chunk", leave=False, disable=list_ptr[-1] < PROGRESS_POSTINGS))
    return SeismicArrays.from_arrays(dim, _concatenate(chunks, parts, list_ptr, doc_ptr, doc_terms,
                                                       doc_vals))


#: Names of the arrays :func:`build_lists` returns, in order.
PARTS = ("postings", "list_blocks", "block_ptr", "block_min", "block_step", "list_summary_ptr",
         "summary_terms", "list_entry_ptr", "summary_ptr", "summary_blocks", "summary_codes")
#: The per-list offset arrays, and the per-chunk count each one is relative to.
_LIST_OFFSETS = {"list_blocks": "block_min", "list_summary_ptr": "summary_terms",
                 "list_entry_ptr": "summary_blocks"}


def _concatenate(chunks: list[tuple[int, int]], parts: list[tuple[np.ndarray, ...]],
                 list_ptr: np.ndarray, doc_ptr: np.ndarray, doc_terms: np.ndarray,
                 doc_vals: np.ndarray) -> dict[str, np.ndarray]:
    """Chunk results with their relative offsets shifted into one set of global arrays."""
    dim = list_ptr.size - 1
    named = [dict(zip(PARTS, part)) for part in parts]
    arrays = {name: np.concatenate([part[name] for part in named]) for name in PARTS
              if name not in _LIST_OFFSETS and name != "block_ptr"}
    for name, counted in _LIST_OFFSETS.items():
        offsets = np.zeros(dim + 1, dtype=np.int64)
        done = 0
        for (t0, t1), part in zip(chunks, named):
            offsets[t0:t1 + 1] = part[name] + done
            done += part[counted].size
        arrays[name] = offsets
    block_ptrs = [part["block_ptr"][:-1] + list_ptr[t0] for (t0, _), part in zip(chunks, named)]
    arrays["block_ptr"] = np.concatenate(block_ptrs + [[list_ptr[-1]]]).astype(np.int64)
    return {"doc_ptr": doc_ptr, "doc_entries": SeismicArrays.interleave(doc_terms, doc_vals), **arrays}
