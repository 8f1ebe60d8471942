"""Structural checks of an index read by FAISS's serializer, before any search touches it.

FAISS's reader checks sizes (and, in recent versions, the HNSW graph), but it accepts inverted
lists whose ids lie outside the index, which a search would return as document positions. These
checks bound what a forged ``index.faiss`` can do: its class tree must be the one the saved
factory string builds, its metric the saved one, every IVF id and HNSW link must point inside the
index. Index types without such checks here rely on FAISS's reader (see docs/architecture.md).
"""

from __future__ import annotations

import faiss
import numpy as np

from embedlab.errors import StateError
from embedlab.state_checks import check_offsets, check_range


def _classes(index: faiss.Index) -> list[str]:
    """Class names of the index and of the sub-indexes it wraps (quantizer, storage, base)."""
    index = faiss.downcast_index(index)
    names = [type(index).__name__]
    for attribute in ("quantizer", "storage", "base_index", "index"):
        inner = getattr(index, attribute, None)
        if isinstance(inner, faiss.Index):
            names += [f"{attribute}:{name}" for name in _classes(inner)]
    return names


def check_structure(index: faiss.Index, fresh: faiss.Index, where: str) -> None:
    """:class:`StateError` unless ``index`` has the class tree and metric of ``fresh`` (the same
    factory string, untrained) and its IVF lists and HNSW links stay inside the index."""
    fresh = faiss.deserialize_index(faiss.serialize_index(fresh))  # as FAISS's reader types it
    if _classes(index) != _classes(fresh) or index.metric_type != fresh.metric_type:
        raise StateError(f"{where}: FAISS index {_classes(index)} (metric {index.metric_type}) is not what "
                         f"the saved factory builds ({_classes(fresh)}, metric {fresh.metric_type})")
    _check_tree(faiss.downcast_index(index), where)


def _check_tree(index: faiss.Index, where: str) -> None:
    if isinstance(index, faiss.IndexIVF):
        _check_ivf(index, where)
    if hasattr(index, "hnsw"):
        _check_hnsw(index, where)
    for attribute in ("quantizer", "storage", "base_index", "index"):
        inner = getattr(index, attribute, None)
        if isinstance(inner, faiss.Index):
            _check_tree(faiss.downcast_index(inner), where)


def _check_ivf(index: faiss.IndexIVF, where: str) -> None:
    lists, n = index.invlists, int(index.ntotal)
    if lists is None or lists.nlist != index.nlist or (index.is_trained and index.quantizer.ntotal != index.nlist):
        raise StateError(f"{where}: inverted lists do not match the {index.nlist} IVF centroids")
    total = 0
    for number in range(index.nlist):
        size = int(lists.list_size(number))
        total += size
        if size:
            check_range(faiss.rev_swig_ptr(lists.get_ids(number), size), n, f"{where}: ids of IVF list {number}")
    if total != n:
        raise StateError(f"{where}: IVF lists hold {total} entries for {n} vectors")


def _check_hnsw(index: faiss.Index, where: str) -> None:
    graph, n = index.hnsw, int(index.ntotal)
    levels = faiss.vector_to_array(graph.levels).astype(np.int64)
    per_level = faiss.vector_to_array(graph.cum_nneighbor_per_level).astype(np.int64)
    neighbors = faiss.vector_to_array(graph.neighbors)
    if levels.size != n or (n and (levels.min() < 1 or levels.max() >= per_level.size)):
        raise StateError(f"{where}: HNSW levels do not match {n} vectors")
    offsets = faiss.vector_to_array(graph.offsets).astype(np.int64)
    check_offsets(offsets, n, neighbors.size, f"{where}: HNSW offsets")
    if n and (np.diff(offsets) != per_level[levels]).any():
        raise StateError(f"{where}: HNSW offsets do not match the levels")
    check_range(neighbors, n, f"{where}: HNSW links", lower=-1)
    entry = int(graph.entry_point)
    if (n and not 0 <= entry < n) or (n and int(graph.max_level) != int(levels[entry]) - 1):
        raise StateError(f"{where}: HNSW entry point {entry} / top level {graph.max_level} is invalid")
