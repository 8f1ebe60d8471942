"""What the filtered indexes share: attribute columns, filter resolution, argument checks and
the attribute part of their saved state."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import scipy.sparse as sp

from embedlab.attributes import (
    META_KEY,
    append_columns,
    check_columns,
    columns_bytes,
    columns_from_state,
    columns_to_state,
)
from embedlab.components import Component
from embedlab.embeddings import BinaryCodes, Embeddings, MultiVectorEmbeddings, count
from embedlab.errors import InvalidInputError
from embedlab.persistence import SavedState
from embedlab_filtered.masks import MaskSet, resolve_masks

OWNER = "filtered index"


def n_rows(queries: Embeddings | list) -> int:
    """Number of queries in any embedding container (or a nested list of dense vectors)."""
    return len(queries) if isinstance(queries, (list, tuple)) else count(queries)


def take_rows(queries: Embeddings | list, rows: np.ndarray) -> Embeddings:
    """The queries at ``rows``, in that order, in the same kind of container."""
    if isinstance(queries, MultiVectorEmbeddings):
        return queries.take(rows)
    if isinstance(queries, BinaryCodes):
        return BinaryCodes(queries.bits[rows], queries.dim)
    if isinstance(queries, (list, tuple)) or not (sp.issparse(queries) or isinstance(queries, np.ndarray)):
        queries = np.asarray(queries, dtype=np.float32)
    return queries[rows]


class FilteredIndex(Component):
    """Base class: keeps the attribute columns given to ``build``/``add`` and resolves filters
    (any form :func:`embedlab.filters.resolve_filter` accepts) into a :class:`MaskSet`."""

    kind = "index"

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._attributes: dict[str, np.ndarray] = {}

    @property
    def attributes(self) -> Mapping[str, np.ndarray]:
        """Attribute columns, one value per document."""
        return dict(self._attributes)

    def _columns(self, attributes: Mapping[str, np.ndarray] | None, n_new: int, *,
                 adding: bool) -> dict[str, np.ndarray]:
        """Checked columns of ``n_new`` documents (for ``add``: the same names as the index)."""
        return check_columns(attributes, n_new, self._attributes if adding else None, owner=OWNER)

    def _append(self, columns: Mapping[str, np.ndarray]) -> None:
        self._attributes = append_columns(self._attributes, columns)

    def _check_search(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"{self.name} index: k must be a positive integer, got {k!r}")
        if not len(self):
            raise InvalidInputError(f"{self.name} index: the index is empty; call build() first")
        return int(k)

    def _masks(self, filter: Any, n_queries: int) -> MaskSet:
        return resolve_masks(filter, self._attributes, len(self), n_queries)

    def _attribute_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, entries = columns_to_state(self._attributes, owner=OWNER)
        return arrays, {META_KEY: entries}

    def _load_attributes(self, state: SavedState) -> None:
        self._attributes = columns_from_state(state, len(self))

    @property
    def _attribute_bytes(self) -> int:
        return columns_bytes(self._attributes)

    def __len__(self) -> int:
        raise NotImplementedError
