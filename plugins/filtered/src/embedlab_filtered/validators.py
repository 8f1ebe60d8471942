"""attrs validators shared by the index configs."""

from __future__ import annotations

import numbers
from typing import Any

import attrs


def positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def optional_positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None:
        positive_int(instance, attribute, value)


def non_negative_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0, got {value!r}")


def real_at_least(low: float, *, strict: bool = False):  # type: ignore[no-untyped-def]
    """A real number ``>= low`` (``> low`` when ``strict``)."""

    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value \
                or (value <= low if strict else value < low):
            raise ValueError(f"{attribute.name} must be a number {'>' if strict else '>='} {low}, "
                             f"got {value!r}")

    return check
