"""Document and query ids: what a valid id is, and the arrays that hold them.

An id is non-empty text without whitespace (any character ``str.split`` splits on, so it survives
a TREC file), NUL or lone surrogate (it survives UTF-8). The empty string is reserved: it pads
:class:`~embedlab.Ranking` rows. Loaders check every id where it enters, naming the file and line
(:func:`check_id`); :class:`~embedlab.Corpus` and :class:`~embedlab.Queries` check theirs again
(:func:`check_ids`), so no other path lets a bad id in.

Ids live in numpy arrays of variable-width strings (:data:`ID_DTYPE`, numpy's ``StringDType``): an
array's size follows its ids, where a fixed-width unicode array makes every element as wide as the
longest id (one 50 KB id among a million made a 200 GB array).
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from embedlab.errors import InvalidInputError

#: Variable-width strings: 16 bytes per element, ids longer than 15 bytes stored once beside.
ID_DTYPE = np.dtypes.StringDType()
#: The rule every error message repeats.
RULE = "ids must be non-empty and contain no whitespace, NUL or lone surrogate"
_FORBIDDEN = re.compile(r"[\s\x00\ud800-\udfff]")
_WHITESPACE_RUN = re.compile(r"\s+")


def as_ids(values: Any) -> np.ndarray:
    """``values`` (ids as a sequence or array of any shape; non-strings become ``str(value)``)
    as an :data:`ID_DTYPE` array, without copying one that already is."""
    try:
        return np.asarray(values, dtype=ID_DTYPE)
    except UnicodeEncodeError as error:  # variable-width strings are stored as UTF-8
        bad = error.object if isinstance(error.object, str) else str(error.object)
        raise InvalidInputError(f"id {_shown(bad)} {id_problem(bad) or 'is not valid UTF-8'}; {RULE}") from None


def id_problem(value: str) -> str | None:
    """Why ``value`` cannot be an id, or None when it can."""
    if not value:
        return "is empty"
    bad = _FORBIDDEN.search(value)
    if bad is None:
        return None
    char = bad.group()
    if char == "\x00":
        return "contains NUL"
    if "\ud800" <= char <= "\udfff":
        return f"contains a lone surrogate ({char!r})"
    return f"contains whitespace ({char!r})"


def check_id(value: str, where: str, what: str = "id") -> str:
    """``value`` when it is a valid id; otherwise :class:`InvalidInputError` naming ``where``
    (``file:line``) and ``what`` (``document id``, ``query id``)."""
    problem = id_problem(value)
    if problem is not None:
        raise InvalidInputError(f"{where}: {what} {_shown(value)} {problem}; {RULE}")
    return value


def check_ids(ids: np.ndarray, what: str) -> None:
    """Every element of ``ids`` (any shape) is a valid id; otherwise :class:`InvalidInputError`
    naming the first bad one and its position. One pass in C for valid arrays."""
    values = ids.ravel().tolist() if isinstance(ids, np.ndarray) else list(ids)
    if "" not in values and _FORBIDDEN.search("a".join(values)) is None:
        return
    position, value = next((i, v) for i, v in enumerate(values) if id_problem(v) is not None)
    raise InvalidInputError(f"{what} id {_shown(value)} at position {position} {id_problem(value)}; {RULE}")


def underscore_whitespace(value: str) -> str:
    """``value`` with leading/trailing whitespace removed and each inner run replaced by ``_``."""
    return _WHITESPACE_RUN.sub("_", value.strip())


def _shown(value: str) -> str:
    """repr of an id, shortened to 60 characters."""
    return repr(value) if len(value) <= 60 else repr(value[:60]) + f"... ({len(value):,} characters)"
