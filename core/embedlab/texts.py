"""Checking text input of encoders and rerankers: a sequence of valid Unicode strings."""

from __future__ import annotations

from typing import Iterable

from embedlab.errors import InvalidInputError


def check_texts(texts: object, what: str = "texts") -> list[str]:
    """Return ``texts`` as a list, or raise InvalidInputError naming the first bad item's index.

    Bytes, non-strings and strings that cannot be encoded as UTF-8 (lone surrogates, as left by
    ``errors="surrogateescape"`` decoding) are rejected. Empty strings are fine.
    """
    if isinstance(texts, (str, bytes, bytearray)):
        raise InvalidInputError(f"{what}: expected a sequence of strings, got a single "
                                f"{type(texts).__name__}; wrap it in a list")
    if not isinstance(texts, Iterable):
        raise InvalidInputError(f"{what}: expected a sequence of strings, got {type(texts).__name__}")
    items = list(texts)
    if all(type(t) is str for t in items):
        try:
            "".join(items).encode("utf-8")
            return items
        except UnicodeEncodeError:
            pass
    for i, text in enumerate(items):
        if isinstance(text, (bytes, bytearray)):
            raise InvalidInputError(f"{what}: item {i} is bytes, not str; decode it first, e.g. "
                                    "data.decode('utf-8', errors='replace')")
        if not isinstance(text, str):
            raise InvalidInputError(f"{what}: item {i} is {type(text).__name__}, not str")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InvalidInputError(
                f"{what}: item {i} is not valid UTF-8 text ({error.reason} "
                f"{text[error.start]!r} at character {error.start}); repair it, e.g. "
                "text.encode('utf-8', errors='replace').decode('utf-8')") from None
    return items
