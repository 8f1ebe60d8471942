"""Resolved filters grouped by distinct mask: which documents each query may return."""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np

from embedlab.filters import resolve_filter


@attrs.frozen(eq=False)
class MaskSet:
    """``masks[rows[q]]`` is the boolean mask of query ``q``; ``masks`` is ``None`` when every
    document passes. ``counts[g]`` is the number of documents that mask ``g`` lets through."""

    masks: np.ndarray | None
    rows: np.ndarray
    counts: np.ndarray

    @property
    def passing(self) -> np.ndarray:
        """Number of documents each query may return."""
        return self.counts[self.rows]

    def mask(self, group: int) -> np.ndarray | None:
        return None if self.masks is None else self.masks[group]

    def groups(self) -> list[tuple[int, np.ndarray]]:
        """(mask index, the queries that use it), for every mask some query uses."""
        order = np.argsort(self.rows, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(self.rows[order]) != 0]) if order.size else []
        bounds = list(starts) + [order.size]
        return [(int(self.rows[order[a]]), order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def resolve_masks(filter: Any, attributes: Mapping[str, np.ndarray], n_docs: int,
                  n_queries: int) -> MaskSet:
    """Resolve ``filter`` with :func:`embedlab.filters.resolve_filter` and keep each distinct
    mask once (per-query filters often repeat)."""
    mask = resolve_filter(filter, attributes, n_docs, n_queries)
    if mask is None:
        return MaskSet(None, np.zeros(n_queries, np.int64), np.array([n_docs], np.int64))
    if mask.ndim == 1:
        return MaskSet(mask[None, :], np.zeros(n_queries, np.int64),
                       np.array([int(mask.sum())], np.int64))
    packed = np.ascontiguousarray(np.packbits(mask, axis=1))
    keys = packed.view(np.dtype((np.void, packed.shape[1])))[:, 0]
    _, first, rows = np.unique(keys, return_index=True, return_inverse=True)
    distinct = np.ascontiguousarray(mask[first])
    return MaskSet(distinct, rows.reshape(-1).astype(np.int64), distinct.sum(axis=1).astype(np.int64))
