"""Attribute columns of a filtered index: the core's checks and pickle-free persistence
(:mod:`embedlab.attributes`), with this plugin's name in the messages."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from embedlab import attributes
from embedlab.attributes import META_KEY, append_columns, columns_bytes

OWNER = "filtered index"

__all__ = ["META_KEY", "append_columns", "check_columns", "columns_bytes", "columns_from_state",
           "columns_to_state"]


def check_columns(columns: Mapping[str, np.ndarray] | None, n_docs: int,
                  existing: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Columns as arrays of one value per document (the same names as ``existing`` for ``add``)."""
    return attributes.check_columns(columns, n_docs, existing, owner=OWNER)


def columns_to_state(columns: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """``.npy`` arrays and the manifest entries describing them."""
    return attributes.columns_to_state(columns, owner=OWNER)


def columns_from_state(meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray],
                       n_docs: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`columns_to_state`."""
    return attributes.columns_from_state(meta.get(META_KEY, []), arrays, n_docs, owner=OWNER)
