"""Filtered search: boolean masks become ``faiss.IDSelectorBitmap`` selectors passed in
``SearchParameters`` of the type each index expects, carrying its current runtime parameters."""

from __future__ import annotations

import faiss
import numpy as np

from embedlab.errors import ConfigError
from embedlab_faiss.factory import index_type


def search_parameters(index: faiss.Index, selector: faiss.IDSelector | None, k: int) -> faiss.SearchParameters:
    """Parameters restricting ``index`` to ``selector`` (None: every document); the index's
    nprobe/efSearch are kept (FAISS would otherwise use the parameter objects' defaults), except
    that an HNSW beam is widened to ``k``: FAISS does not, and a beam narrower than ``k`` returns
    fewer than ``k`` documents (half of a 300-document index for ``k = 300``, ``efSearch = 16``)."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPreTransform):  # forwards the parameters to its sub-index
        return search_parameters(index.index, selector, k)
    if isinstance(index, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe, max_codes=index.max_codes)
    if isinstance(index, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=max(index.hnsw.efSearch, k),
                                          check_relative_distance=index.hnsw.check_relative_distance,
                                          bounded_queue=index.hnsw.search_bounded_queue)
    if isinstance(index, faiss.IndexRefine):
        depth = int(k * index.k_factor)
        return faiss.IndexRefineSearchParameters(
            sel=selector, k_factor=index.k_factor,
            base_index_params=search_parameters(index.base_index, selector, depth))
    return faiss.SearchParameters(sel=selector)


def needs_parameters(index: faiss.Index, k: int) -> bool:
    """Whether an unfiltered search of ``k`` needs :func:`search_parameters`: an HNSW beam
    (under any pre-transform or refinement) narrower than ``k``."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPreTransform):
        return needs_parameters(index.index, k)
    if isinstance(index, faiss.IndexRefine):
        return needs_parameters(index.base_index, int(k * index.k_factor))
    return isinstance(index, faiss.IndexHNSW) and index.hnsw.efSearch < k


def search_masked(index: faiss.Index, queries: np.ndarray, k: int, mask: np.ndarray,
                  factory: str) -> tuple[np.ndarray, np.ndarray]:
    """Search with a ``(n_docs,)`` mask for every query or an ``(n_queries, n_docs)`` mask,
    making one FAISS call per distinct mask."""
    packed = np.packbits(mask, axis=-1, bitorder="little")
    if packed.ndim == 1:
        return _search_bitmap(index, queries, k, packed, factory)
    keys = np.ascontiguousarray(packed).view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, first, group = np.unique(keys, return_index=True, return_inverse=True)
    distances = np.empty((queries.shape[0], k), dtype=np.float32)
    labels = np.empty((queries.shape[0], k), dtype=np.int64)
    for g, row in enumerate(first):
        rows = np.flatnonzero(group.reshape(-1) == g)
        distances[rows], labels[rows] = _search_bitmap(index, queries[rows], k, packed[row], factory)
    return distances, labels


def _search_bitmap(index: faiss.Index, queries: np.ndarray, k: int, bitmap: np.ndarray,
                   factory: str) -> tuple[np.ndarray, np.ndarray]:
    selector = faiss.IDSelectorBitmap(np.ascontiguousarray(bitmap))
    try:
        return index.search(queries, k, params=search_parameters(index, selector, k))
    except RuntimeError as error:
        raise ConfigError(f"faiss: factory {factory!r} ({index_type(index)}) cannot search under a "
                          "filter; FAISS supports filters on Flat, IVF*, HNSW*, SQ and refined indexes "
                          f"(e.g. 'IVF1,PQ16' instead of 'PQ16'). FAISS says: {error}") from None
