"""check_texts: every encoder's input check, with the first bad item named."""

from __future__ import annotations

import pytest

from embedlab.errors import InvalidInputError
from embedlab.texts import check_texts


def test_a_sequence_of_strings_comes_back_as_a_list() -> None:
    assert check_texts(("a", "", "b")) == ["a", "", "b"]
    assert check_texts(iter(["x"])) == ["x"]


@pytest.mark.parametrize("bad, message", [
    ("one string", "single str; wrap it in a list"),
    (b"bytes", "single bytes"),
    (None, "expected a sequence of strings, got NoneType"),
    (["ok", b"raw"], "docs: item 1 is bytes, not str; decode it first"),
    (["ok", 3], "docs: item 1 is int, not str"),
    (["ok", "fine", "lone \udc80 surrogate"], "docs: item 2 is not valid UTF-8 text"),
])
def test_bad_input_names_what_and_where(bad: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        check_texts(bad, "docs")
