"""Segmentation of documents into passages: sentences, words and token windows, offsets, limits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from embedlab import Corpus
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.hashing import HashingEncoder
from embedlab.segmentation import Passages, Segmentation, segment, sentence_spans, windows, word_starts
from embedlab.testing import TokenLimitedHashing


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in sentence_spans(text)]


@pytest.mark.parametrize("text, expected", [
    ("One. Two!  Three?", ["One.", "Two!", "Three?"]),
    ("Smith et al. found it. Fig. 2 shows i.e. this. Then J. R. R. Tolkien wrote.",
     ["Smith et al. found it.", "Fig. 2 shows i.e. this.", "Then J. R. R. Tolkien wrote."]),
    ("The dose was 2.5 mg. It worked.", ["The dose was 2.5 mg.", "It worked."]),
    ('He said "Stop." Then (see below) "Go!" (Fine.) Done.', ['He said "Stop."', 'Then (see below) "Go!"',
                                                          "(Fine.)", "Done."]),
    ("lower case. follows here", ["lower case. follows here"]),
    ("A heading\n\nbody text without a full stop", ["A heading", "body text without a full stop"]),
    ("In 2019. 40 patients improved.", ["In 2019.", "40 patients improved."]),
    ("", []),
    ("   \n  ", []),
])
def test_sentence_spans(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_windows_cover_with_overlap() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, size = int(rng.integers(1, 60)), int(rng.integers(1, 12))
        overlap = int(rng.integers(0, size))
        found = windows(n, size, overlap)
        assert found[0][0] == 0 and found[-1][1] == n
        for (a, b), (c, d) in zip(found, found[1:]):
            assert c > a and d > b and b - c == overlap  # advances and shares `overlap` units
        assert all(0 < b - a <= size for a, b in found)


def test_windows_snap_to_allowed_starts() -> None:
    starts = np.array([0, 3, 5, 9, 12])
    # (5, 11) would cut the word 9..12 and add nothing whole: the third window starts at 9 instead
    assert windows(14, 6, 1, starts) == [(0, 5), (3, 9), (9, 14)]
    assert windows(14, 6, 0, starts) == [(0, 5), (5, 9), (9, 14)]
    # one "word" longer than the window is cut inside it rather than never advancing
    assert windows(10, 3, 0, np.array([0])) == [(0, 3), (3, 6), (6, 9), (9, 10)]


def test_word_starts_groups_adjacent_tokens() -> None:
    spans = np.array([[0, 4], [4, 7], [8, 10], [10, 11], [12, 15]])  # "word" "##ing" " is" "." " x"
    assert word_starts(spans).tolist() == [0, 2, 4]


def test_token_passages_fit_the_encoder_and_keep_offsets() -> None:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(50)]
    texts = [" ".join(rng.choice(words, int(rng.integers(0, 90)))) + "." for _ in range(30)]
    corpus = Corpus([f"d{i}" for i in range(30)], texts, titles=[f"title {i}" if i % 2 else "" for i in range(30)])
    encoder = TokenLimitedHashing(max_tokens=12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no passage is over the limit: nothing to warn about
        passages = segment(corpus, encoder=encoder, by="tokens", overlap=3)
    lengths = [len(s) for s in encoder.token_spans(list(passages.texts))]
    assert max(lengths) <= 12
    assert set(passages.document.tolist()) == set(range(30))
    for p in range(len(passages)):
        doc = int(passages.document[p])
        body = texts[doc][passages.start[p]:passages.end[p]]
        title = corpus.titles[doc]
        assert passages.texts[p] == (f"{title} {body}" if title else body)
    for doc in range(30):  # every token of every document is in some passage
        spans = encoder.token_spans([texts[doc]])[0]
        rows = np.flatnonzero(passages.document == doc)
        covered = np.zeros(len(spans), bool)
        for p in rows:
            covered |= (spans[:, 0] >= passages.start[p]) & (spans[:, 1] <= passages.end[p])
        assert covered.all()


def test_sentence_and_word_passages_with_overlap() -> None:
    corpus = Corpus(["a", "b"], ["First one. Second one. Third one.", "x y z w v"])
    by_sentence = segment(corpus, by="sentences", size=2, overlap=1)
    assert by_sentence.texts[:2] == ("First one. Second one.", "Second one. Third one.")
    assert by_sentence.texts[2] == "x y z w v"
    by_word = segment(corpus, by="words", size=2)
    assert by_word.texts[-3:] == ("x y", "z w", "v")
    assert by_word.ids[-3:].tolist() == ["b#0", "b#1", "b#2"]
    assert by_word.counts.tolist() == [3, 3]


def test_every_document_keeps_a_passage() -> None:
    corpus = Corpus(["empty", "blank", "full"], ["", "   ", "Some text."], titles=["T", "", ""])
    passages = segment(corpus, by="tokens", encoder=TokenLimitedHashing(max_tokens=4))
    assert passages.counts.tolist() == [1, 1, 1]
    assert passages.texts[:2] == ("T ", "   ")
    assert passages.first().texts == passages.texts


def test_tokens_need_a_tokenizer() -> None:
    corpus = Corpus(["a"], ["text"])
    with pytest.raises(ConfigError, match="'hashing' has none.*'words' or 'sentences'"):
        segment(corpus, by="tokens", encoder=HashingEncoder())
    with pytest.raises(ConfigError, match="no encoder was given"):
        segment(corpus, by="tokens")


def test_passages_over_the_limit_are_announced_with_counts() -> None:
    corpus = Corpus(["a", "b"], ["one two three four five six", "short"])
    with pytest.warns(UserWarning, match=r"1 of 2 passages are longer than the 4 tokens.*longest: 6"):
        segment(corpus, by="sentences", encoder=TokenLimitedHashing(max_tokens=4))


@pytest.mark.parametrize("params, message", [
    ({"by": "lines"}, "by"), ({"size": 0}, "size"), ({"size": 4, "overlap": 4}, "overlap"),
    ({"by": "sentences", "overlap": 1}, "overlap"), ({"title": "yes"}, "title"),
])
def test_bad_segmentation(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        segment(Corpus(["a"], ["x"]), **params)
    with pytest.raises((TypeError, ValueError)):
        Segmentation(**params)


def test_passages_validate_their_layout() -> None:
    with pytest.raises(InvalidInputError, match="grouped by document"):
        Passages(["a", "b"], [1, 0], [0, 0], [1, 1], ["x", "y"])
    with pytest.raises(InvalidInputError, match="'b' has no passage"):
        Passages(["a", "b"], [0], [0], [1], ["x"])
    with pytest.raises(InvalidInputError, match="same length"):
        Passages(["a"], [0], [0, 1], [1], ["x"])
