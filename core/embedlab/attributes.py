"""Per-document attribute columns held by indexes: checks, appends and pickle-free persistence.

Object columns (strings or numbers with ``None``/NaN for missing values) are saved as plain string or
float arrays plus a missing-value mask, so no column ever needs pickle.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from embedlab.errors import InvalidInputError, StateError
from embedlab.filters import missing
from embedlab.persistence import SavedState

META_KEY = "attributes"
#: Column encodings in a saved state, with the dtype kinds their arrays may have.
ENCODINGS = {"plain": "biufUSMm", "strings": "U", "numbers": "f"}


def check_columns(attributes: Mapping[str, np.ndarray] | None, n_docs: int,
                  existing: Mapping[str, np.ndarray] | None = None, *,
                  owner: str = "index") -> dict[str, np.ndarray]:
    """Columns as arrays of one value per document (the same names as ``existing`` for ``add``)."""
    columns = {str(name): np.asarray(column) for name, column in (attributes or {}).items()}
    for name, column in columns.items():
        if column.shape != (n_docs,):
            raise InvalidInputError(f"{owner}: attribute {name!r} has shape {column.shape}, "
                                    f"expected ({n_docs},) (one value per document)")
    if existing is not None and set(columns) != set(existing):
        raise InvalidInputError(f"{owner}: added documents have attributes {sorted(columns)}, "
                                f"the index has {sorted(existing)}; pass the same columns")
    return columns


def append_columns(existing: Mapping[str, np.ndarray], new: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``existing`` followed by ``new`` (both checked by :func:`check_columns`)."""
    return {name: np.concatenate([existing[name], new[name]]) for name in existing}


def columns_bytes(columns: Mapping[str, np.ndarray]) -> int:
    """Memory held by the columns (object columns count their pointer arrays only)."""
    return sum(int(column.nbytes) for column in columns.values())


def _encode(name: str, column: np.ndarray, owner: str) -> tuple[str, dict[str, np.ndarray]]:
    if column.dtype != object:
        return "plain", {"": column}
    absent = missing(column)
    present = column[~absent]
    if all(isinstance(v, str) for v in present):
        return "strings", {"": np.where(absent, "", column).astype(str), "_missing": absent}
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in present):
        return "numbers", {"": np.where(absent, np.nan, column).astype(np.float64)}
    raise StateError(f"{owner}: attribute {name!r} mixes value types; only strings or numbers "
                     "(with None/NaN for missing) can be saved")


def columns_to_state(columns: Mapping[str, np.ndarray], *,
                     owner: str = "index") -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """``.npy`` arrays (``attribute_<i>...``) and the manifest entries describing them."""
    arrays: dict[str, np.ndarray] = {}
    entries = []
    for i, (name, column) in enumerate(columns.items()):
        encoding, encoded = _encode(name, column, owner)
        entries.append({"name": name, "encoding": encoding})
        arrays.update({f"attribute_{i}{suffix}": a for suffix, a in encoded.items()})
    return arrays, entries


def columns_from_state(state: SavedState, n_docs: int) -> dict[str, np.ndarray]:
    """Inverse of :func:`columns_to_state` for a loaded state (manifest entries under
    ``meta.attributes``); :class:`StateError` naming the file when an array is missing or wrong."""
    entries = state.value(META_KEY, list, default=[])
    columns = {}
    for i, entry in enumerate(entries):
        key = f"attribute_{i}"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or entry.get("encoding") not in ENCODINGS:
            raise state.error(f"meta.{META_KEY}[{i}] must be an object with a string 'name' and an "
                              f"'encoding' among {sorted(ENCODINGS)}")
        values = state.array(key, kinds=ENCODINGS[entry["encoding"]], shape=(n_docs,))
        if entry["encoding"] == "strings":
            values = values.astype(object)
            values[state.array(f"{key}_missing", dtype=bool, shape=(n_docs,))] = None
        columns[entry["name"]] = values
    return columns
