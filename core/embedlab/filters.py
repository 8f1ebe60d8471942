"""Filter resolution shared by every index: turn a filter specification into a boolean mask.

Accepted filters (``resolve_filter``):

* ``None``: no filter;
* a numpy ``bool`` array of shape ``(n_docs,)`` (one mask for every query) or
  ``(n_queries, n_docs)`` (one mask per query);
* a callable taking the attribute columns ``{name: array}`` and returning such a mask;
* a declarative dict (usable from TOML), several keys meaning AND::

      {"package": "json"}                       # equality
      {"package": {"in": ["json", "csv"]}}      # set membership
      {"length": {"gte": 100, "lt": 500}}       # numeric range: gt, gte, lt, lte (eq also works)

* a list (or tuple) with one of the above per query (length ``n_queries``); ``None`` entries
  let every document through for that query. Masks must be numpy arrays: a list is always
  read as per-query specifications.

A document whose attribute is missing (``None`` or NaN) never passes a condition on that
attribute. A filter that no document passes is not an error: the search returns an empty
(padded) result.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping

import numpy as np

from embedlab.errors import InvalidInputError

#: Operators of the declarative form, mapped to the numpy comparison they apply.
RANGE_OPERATORS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "gt": np.greater, "gte": np.greater_equal, "lt": np.less, "lte": np.less_equal,
}
OPERATORS = ("eq", "in", *RANGE_OPERATORS)


def resolve_filter(filter: Any, attributes: Mapping[str, np.ndarray], n_docs: int,
                   n_queries: int) -> np.ndarray | None:
    """Resolve ``filter`` into ``None`` (no filter), a ``(n_docs,)`` or an ``(n_queries, n_docs)``
    boolean mask over document positions.

    >>> attrs = {"package": np.array(["json", "csv", "os"])}
    >>> resolve_filter({"package": {"in": ["json", "os"]}}, attrs, 3, 1)
    array([ True, False,  True])
    """
    if filter is None:
        return None
    if isinstance(filter, (list, tuple)):
        return _per_query(filter, attributes, n_docs, n_queries)
    return _resolve_one(filter, attributes, n_docs, n_queries)


def _per_query(specs: list | tuple, attributes: Mapping[str, np.ndarray], n_docs: int,
               n_queries: int) -> np.ndarray | None:
    if len(specs) != n_queries:
        raise InvalidInputError(f"filter: a list of per-query filters needs one entry per query "
                                f"({n_queries}), got {len(specs)}; a mask must be a numpy bool array")
    masks = [_resolve_one(spec, attributes, n_docs, None) for spec in specs]
    if all(m is None for m in masks):
        return None
    out = np.ones((n_queries, n_docs), dtype=bool)
    for row, mask in enumerate(masks):
        if mask is not None:
            out[row] = mask
    return out


def _resolve_one(spec: Any, attributes: Mapping[str, np.ndarray], n_docs: int,
                 n_queries: int | None) -> np.ndarray | None:
    """One filter; ``n_queries`` is None inside a per-query list (only 1-d masks allowed)."""
    if spec is None:
        return None
    if isinstance(spec, np.ndarray):
        return _check_mask(spec, n_docs, n_queries, "filter mask")
    if isinstance(spec, Mapping):
        return _from_dict(spec, attributes, n_docs)
    if callable(spec):
        return _check_mask(np.asarray(spec(attributes)), n_docs, n_queries,
                           "mask returned by the filter callable")
    raise InvalidInputError(f"filter: unsupported filter of type {type(spec).__name__}; use None, a "
                            "numpy bool mask, a callable, a dict such as {'package': 'json'} or a "
                            "list of those (one per query)")


def _check_mask(mask: np.ndarray, n_docs: int, n_queries: int | None, what: str) -> np.ndarray:
    if mask.dtype != np.bool_:
        raise InvalidInputError(f"{what}: expected dtype bool, got {mask.dtype}; build it with a "
                                "comparison such as `lengths > 100`")
    shapes = [(n_docs,)] if n_queries is None else [(n_docs,), (n_queries, n_docs)]
    if mask.shape not in shapes:
        raise InvalidInputError(f"{what}: shape {mask.shape} does not match "
                                f"{' or '.join(map(str, shapes))} (documents"
                                f"{'' if n_queries is None else ', or queries x documents'})")
    return mask


def _from_dict(spec: Mapping[str, Any], attributes: Mapping[str, np.ndarray], n_docs: int) -> np.ndarray | None:
    mask: np.ndarray | None = None
    for name, condition in spec.items():
        column = _column(attributes, name, n_docs)
        passed = _condition(column, condition, name)
        mask = passed if mask is None else mask & passed
    return mask


def _column(attributes: Mapping[str, np.ndarray], name: str, n_docs: int) -> np.ndarray:
    if name not in attributes:
        known = ", ".join(sorted(attributes)) or "none (pass attributes= when building the index)"
        raise InvalidInputError(f"filter: unknown attribute {name!r}; known attributes: {known}")
    column = np.asarray(attributes[name])
    if column.shape != (n_docs,):
        raise InvalidInputError(f"filter: attribute {name!r} has shape {column.shape}, expected "
                                f"({n_docs},) (one value per document)")
    return column


def missing(column: np.ndarray) -> np.ndarray:
    """Where a column has no value: ``None`` or NaN."""
    if column.dtype.kind == "f":
        return np.isnan(column)
    if column.dtype == object:
        return np.equal(column, None) | (column != column)
    return np.zeros(column.shape, dtype=bool)


def _condition(column: np.ndarray, condition: Any, name: str) -> np.ndarray:
    if not isinstance(condition, Mapping):
        return _equals(column, condition, name)
    if not condition:
        raise InvalidInputError(f"filter: empty condition for attribute {name!r}; use one of "
                                f"{', '.join(OPERATORS)}")
    mask = np.ones(column.shape, dtype=bool)
    for operator, value in condition.items():
        if operator == "eq":
            mask &= _equals(column, value, name)
        elif operator == "in":
            mask &= _member(column, value, name)
        elif operator in RANGE_OPERATORS:
            mask &= _compare(column, operator, value, name)
        else:
            raise InvalidInputError(f"filter: unknown operator {operator!r} for attribute {name!r}; "
                                    f"operators: {', '.join(OPERATORS)}")
    return mask


def _check_scalar(column: np.ndarray, value: Any, name: str) -> None:
    if value is None or isinstance(value, (list, tuple, set, dict, np.ndarray)):
        raise InvalidInputError(f"filter: attribute {name!r} compared with {value!r}; equality takes "
                                "one value (use {'in': [...]} for several)")
    text = isinstance(value, (str, bytes))
    if column.dtype.kind in "biuf" and text:
        raise InvalidInputError(f"filter: attribute {name!r} is numeric ({column.dtype}), cannot "
                                f"compare it with the string {value!r}")
    if column.dtype.kind in "US" and not text:
        raise InvalidInputError(f"filter: attribute {name!r} holds strings, cannot compare it with "
                                f"{value!r} of type {type(value).__name__}")


def _equals(column: np.ndarray, value: Any, name: str) -> np.ndarray:
    _check_scalar(column, value, name)
    return np.asarray(column == value, dtype=bool) & ~missing(column)


def _member(column: np.ndarray, values: Any, name: str) -> np.ndarray:
    if not isinstance(values, (list, tuple, set, frozenset, np.ndarray)):
        raise InvalidInputError(f"filter: 'in' for attribute {name!r} needs a list of values, got "
                                f"{values!r}")
    values = list(values)
    if column.dtype != object:
        for value in values:
            _check_scalar(column, value, name)
        return np.isin(column, values) & ~missing(column)
    mask = np.zeros(column.shape, dtype=bool)
    for value in values:
        mask |= _equals(column, value, name)
    return mask


def _compare(column: np.ndarray, operator: str, value: Any, name: str) -> np.ndarray:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(f"filter: {operator!r} for attribute {name!r} needs a number, got "
                                f"{value!r}")
    if column.dtype.kind in "iuf":
        numeric = column
    elif column.dtype == object:
        try:
            numeric = column.astype(np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"filter: attribute {name!r} is not numeric, cannot apply "
                                    f"{operator!r}") from None
    else:
        raise InvalidInputError(f"filter: attribute {name!r} is not numeric ({column.dtype}), cannot "
                                f"apply {operator!r}")
    with np.errstate(invalid="ignore"):
        return RANGE_OPERATORS[operator](numeric, value) & ~missing(numeric)
