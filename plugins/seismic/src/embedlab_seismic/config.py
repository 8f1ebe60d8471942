"""Parameters of the Seismic index, each checked by an attrs validator."""

from __future__ import annotations

import math
from typing import Any

import attrs

#: ``fixed``: keep the ``n_postings`` largest entries of every posting list (the paper's lambda).
#: ``global``: keep the ``n_postings * vocabulary`` largest entries of the whole collection, at most
#: ``n_postings * max_fraction`` per list (the default of the official ``pyseismic-lsr`` wheel).
PRUNING = ("fixed", "global")

#: Largest term id + 1 the int32 arrays hold.
MAX_DIM = 2**31 - 1


def _integer(low: int):  # type: ignore[no-untyped-def]
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{attribute.name} must be an integer >= {low}, got {value!r}")
    return check


def _number(low: float, high: float, *, low_open: bool = True):  # type: ignore[no-untyped-def]
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        ok = (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
              and (value > low if low_open else value >= low) and value <= high)
        if not ok:
            bracket = "(" if low_open else "["
            raise ValueError(f"{attribute.name} must be a finite number in {bracket}{low}, {high}], "
                             f"got {value!r}")
    return check


@attrs.frozen
class SeismicConfig:
    """Build parameters (pruning, blocking, summaries) and query parameters (``query_cut``,
    ``heap_factor``, ``first_sorted``; they can also be overridden per :meth:`search` call).

    Defaults follow the official implementation (``n_postings=3500``, ``centroid_fraction=0.1``,
    ``min_cluster_size=2``, ``summary_energy=0.4``, ``doc_cut=15``) and its guidelines for the
    query side (``query_cut=10``, ``heap_factor=0.8``).
    """

    n_postings: int = attrs.field(default=3500, validator=_integer(1))
    pruning: str = attrs.field(default="fixed", validator=attrs.validators.in_(PRUNING))
    max_fraction: float = attrs.field(default=1.5, validator=_number(0.0, 1e6))
    centroid_fraction: float = attrs.field(default=0.1, validator=_number(0.0, 1.0))
    min_cluster_size: int = attrs.field(default=2, validator=_integer(0))
    doc_cut: int = attrs.field(default=15, validator=_integer(1))
    summary_energy: float = attrs.field(default=0.4, validator=_number(0.0, 1.0))
    query_cut: int = attrs.field(default=10, validator=_integer(1))
    heap_factor: float = attrs.field(default=0.8, validator=_number(0.0, 1e6))
    first_sorted: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    seed: int = attrs.field(default=42, validator=_integer(0))
    n_threads: int = attrs.field(default=1, validator=_integer(1))

    #: Fields that only matter at query time: changing them needs no rebuild.
    QUERY_FIELDS = ("query_cut", "heap_factor", "first_sorted", "n_threads")
