"""Splitting documents into passages: windows of tokens (with overlap), of sentences or of words.

A :class:`Passages` records, for every passage, its document's position in the corpus, the
character span ``[start, end)`` of the passage inside that document's ``text`` and the text that
is encoded (the span, with the document's title in front when ``title`` is set). Passages are
grouped by document, in corpus order, and every document has at least one (an empty text gives
one empty passage), so no document can disappear from a ranking.

Units (:class:`Segmentation` ``by``):

* ``tokens``: windows of ``size`` tokens of the encoder's own tokenizer (the
  :class:`~embedlab.protocols.Tokenizes` capability; ``size`` defaults to what one input of the
  encoder holds, minus the title's tokens when titles are prepended), consecutive windows sharing
  ``overlap`` tokens. Window edges move back to the start of a word, so a passage never begins
  or ends inside a word (unless one word is longer than the window);
* ``sentences``: ``size`` sentences per passage (default 1), ``overlap`` sentences shared, split
  by :func:`sentence_spans`;
* ``words``: ``size`` whitespace-separated words (default 100), ``overlap`` shared; needs no
  tokenizer, so it works with every encoder.

Passages longer than the encoder can take are never cut silently: :func:`check_lengths` warns
with the counts (the encoder then truncates them, as it announces too).
"""

from __future__ import annotations

import re
import warnings
from functools import cached_property
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.dataset import Corpus
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.ids import as_ids
from embedlab.protocols import Tokenizes

UNITS = ("tokens", "sentences", "words")
DEFAULT_SIZES = {"sentences": 1, "words": 100}

#: Words that end with a full stop without ending a sentence (lower case, inner dots kept).
ABBREVIATIONS = frozenset(
    "e.g i.e cf vs etc al fig figs eq eqs ref refs tab vol vols approx ca dr mr mrs ms prof st jr sr "
    "inc ltd corp dept univ resp".split())
#: Sentence-final punctuation, optional closing quotes/brackets, whitespace, then what may start
#: a sentence (an upper-case letter, a digit, or an opening quote/bracket before one).
_BOUNDARY = re.compile(r"[.!?\u2026]+[\"'\u201d\u2019)\]]*(?=\s+[\"'\u201c\u2018(\[]?[A-Z0-9])")
_PARAGRAPH = re.compile(r"\n[ \t\r\f\v]*\n")
_WORD = re.compile(r"\S+")


def positive_or_none(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    """attrs validator: a positive integer (not a bool) or None."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name} must be a positive integer or None, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be an integer >= 0, got {value!r}")


@attrs.frozen
class Segmentation:
    """How documents are cut into passages (see the module docstring)."""

    by: str = attrs.field(default="tokens", validator=attrs.validators.in_(UNITS))
    #: Units per passage; None: the encoder's input size (tokens), 1 sentence, 100 words.
    size: int | None = attrs.field(default=None, validator=positive_or_none)
    #: Units shared by consecutive passages (smaller than ``size``).
    overlap: int = attrs.field(default=0, validator=_non_negative)
    #: Put the document's title in front of each of its passages (``title + " " + passage``).
    title: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

    def __attrs_post_init__(self) -> None:
        size = self.size if self.size is not None else DEFAULT_SIZES.get(self.by)
        if size is not None and self.overlap >= size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than size ({size})")


@attrs.frozen(eq=False)
class Passages:
    """Passages of a corpus: document position, character span in the document's text, and the
    text to encode, grouped by document in corpus order."""

    doc_ids: np.ndarray = attrs.field(converter=as_ids)  # variable-width, as Corpus.ids
    document: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.int64))
    start: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.int64))
    end: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.int64))
    texts: tuple[str, ...] = attrs.field(converter=tuple)

    def __attrs_post_init__(self) -> None:
        n = self.document.size
        if not (self.start.size == self.end.size == len(self.texts) == n):
            raise InvalidInputError("passages: document, start, end and texts must have the same length")
        if n and ((np.diff(self.document) < 0).any() or self.document[0] < 0
                  or self.document[-1] >= self.doc_ids.size):
            raise InvalidInputError("passages must be grouped by document, in corpus order")
        if (self.end < self.start).any():
            raise InvalidInputError("passages: every end offset must be >= its start")
        missing = np.setdiff1d(np.arange(self.doc_ids.size), self.document)
        if missing.size:
            raise InvalidInputError(f"passages: document {str(self.doc_ids[missing[0]])!r} has no passage")

    def __len__(self) -> int:
        return int(self.document.size)

    @cached_property
    def offsets(self) -> np.ndarray:
        """``(n_documents + 1,)``: the passages of document ``i`` are ``offsets[i]:offsets[i + 1]``."""
        return np.searchsorted(self.document, np.arange(self.doc_ids.size + 1)).astype(np.int64)

    @property
    def counts(self) -> np.ndarray:
        """Passages per document."""
        return np.diff(self.offsets)

    @cached_property
    def ids(self) -> np.ndarray:
        """Passage ids ``<document id>#<j>``, j counting a document's passages from 0 (unique)."""
        rank = np.arange(len(self)) - self.offsets[self.document]
        return np.char.add(np.char.add(self.doc_ids[self.document], "#"), rank.astype(str))

    def first(self) -> Passages:
        """The first passage of every document."""
        rows = self.offsets[:-1]
        return Passages(self.doc_ids, self.document[rows], self.start[rows], self.end[rows],
                        [self.texts[i] for i in rows.tolist()])

    def corpus(self, attributes: Mapping[str, np.ndarray] | None = None, *, ids: np.ndarray | None = None) -> Corpus:
        """The passages as a corpus (passage ids unless ``ids`` is given); each document's
        attribute columns are repeated on its passages, so document filters apply to them."""
        columns = {name: np.asarray(column)[self.document] for name, column in (attributes or {}).items()}
        return Corpus(self.ids if ids is None else ids, self.texts, attributes=columns)


# -- units -----------------------------------------------------------------------------------


def sentence_spans(text: str) -> np.ndarray:
    """``(n, 2)`` character spans of the sentences of ``text`` (whitespace trimmed, none empty).

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with closing quotes or brackets) followed by
    whitespace and an upper-case letter, a digit or an opening quote/bracket, unless the word
    before the full stop is an abbreviation (:data:`ABBREVIATIONS`, ``et al.``) or a single
    letter (an initial); a blank line always ends one. Rule-based: a sentence that starts with a
    lower-case letter is joined to the one before.

    >>> text = "Prions (e.g. PrP) misfold. They spread! J. Smith et al. showed it."
    >>> [text[s:e] for s, e in sentence_spans(text)]
    ['Prions (e.g. PrP) misfold.', 'They spread!', 'J. Smith et al. showed it.']
    """
    cuts = {m.end() for m in _PARAGRAPH.finditer(text)}
    for match in _BOUNDARY.finditer(text):
        if not _is_abbreviation(text, match.start(), match.group()):
            cuts.add(match.end())
    spans, begin = [], 0
    for cut in sorted(cuts) + [len(text)]:
        piece = text[begin:cut]
        stripped = piece.strip()
        if stripped:
            left = begin + len(piece) - len(piece.lstrip())
            spans.append((left, left + len(stripped)))
        begin = cut
    return np.asarray(spans, dtype=np.int64).reshape(-1, 2)


def _is_abbreviation(text: str, position: int, punctuation: str) -> bool:
    """Whether the full stop at ``position`` closes an abbreviation or an initial."""
    if not punctuation.startswith(".") or len(punctuation.rstrip("\"'\u201d\u2019)]")) > 1:
        return False
    words = text[:position].split()
    if not words:
        return False
    word = words[-1].lstrip("(\"'[\u201c\u2018").lower()
    if len(word) == 1 and word.isalpha():
        return True
    return word in ABBREVIATIONS or word.rstrip(".") in ABBREVIATIONS


def word_spans(text: str) -> np.ndarray:
    """``(n, 2)`` character spans of the whitespace-separated words of ``text``."""
    return np.asarray([m.span() for m in _WORD.finditer(text)], dtype=np.int64).reshape(-1, 2)


def word_starts(spans: np.ndarray) -> np.ndarray:
    """Positions of the tokens that start a word: the first one and every token preceded by a
    gap (whitespace) in the text. Runs of adjacent tokens (word pieces, punctuation) are one word."""
    if len(spans) == 0:
        return np.zeros(0, dtype=np.int64)
    gap = spans[1:, 0] > spans[:-1, 1]
    return np.concatenate([[0], np.flatnonzero(gap) + 1]).astype(np.int64)


def windows(n: int, size: int, overlap: int, starts: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Unit ranges ``[a, b)`` of at most ``size`` units covering ``0..n``, consecutive ones sharing
    ``overlap`` units. With ``starts`` (the units that may begin a window, e.g. word starts), each
    edge moves back to the nearest allowed unit while every window still adds new units; where
    that is impossible (one word longer than ``size``) a window ends inside the word, and where
    keeping the overlap would add nothing new the next window starts where this one ended.

    >>> windows(10, 4, 1)
    [(0, 4), (3, 7), (6, 10)]
    """
    if n <= size:
        return [(0, n)]
    allowed = np.arange(n + 1) if starts is None else np.union1d(starts, [n])
    out, begin, last_end = [], 0, 0
    while True:
        end = begin + size
        if end >= n:
            out.append((begin, n))
            return out
        end = _snap(allowed, end, max(begin, last_end) + 1) or end
        out.append((begin, end))
        last_end = end
        following = _snap(allowed, end - overlap, begin + 1)
        if following is None or (following + size < n and _snap(allowed, following + size, end + 1) is None):
            following = end
        begin = following


def _snap(allowed: np.ndarray, position: int, lowest: int) -> int | None:
    """The largest allowed position <= ``position`` and >= ``lowest``, or None."""
    i = int(np.searchsorted(allowed, position, side="right")) - 1
    return int(allowed[i]) if i >= 0 and allowed[i] >= lowest else None


# -- segmenting a corpus -----------------------------------------------------------------------


def segment(corpus: Corpus, segmentation: Segmentation | None = None, encoder: Any = None,
            **params: Any) -> Passages:
    """Cut every document of ``corpus`` into passages (``segmentation`` or its parameters).

    ``encoder`` supplies the tokenizer for ``by="tokens"`` (it must be
    :class:`~embedlab.protocols.Tokenizes`) and is used to warn about passages longer than it can
    take (:func:`check_lengths`).

    >>> corpus = Corpus(["d"], ["One. Two three. Four."])
    >>> segment(corpus, by="sentences", size=2, overlap=1).texts
    ('One. Two three.', 'Two three. Four.')
    """
    if segmentation is None:
        try:
            segmentation = Segmentation(**params)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"segmentation: {error}") from None
    elif params:
        raise ConfigError("segment: pass a Segmentation or its parameters, not both")
    tokenizer = encoder if isinstance(encoder, Tokenizes) else None
    if segmentation.by == "tokens" and tokenizer is None:
        name = getattr(encoder, "name", None)
        raise ConfigError(f"segmenting by tokens needs the encoder's tokenizer, and "
                          f"{'no encoder was given' if encoder is None else f'encoder {name!r} has none'} "
                          "(the Tokenizes capability: token_spans and max_tokens); segment by "
                          "'words' or 'sentences' instead")
    titles = corpus.titles if segmentation.title and corpus.titles is not None else None
    prefixes = [f"{t} " if t else "" for t in titles] if titles is not None else [""] * len(corpus)
    if segmentation.by == "tokens":
        assert tokenizer is not None
        ranges = _token_ranges(corpus.texts, prefixes, segmentation, tokenizer)
    else:
        size = segmentation.size or DEFAULT_SIZES[segmentation.by]
        unit = sentence_spans if segmentation.by == "sentences" else word_spans
        ranges = [_unit_ranges(unit(text), len(text), size, segmentation.overlap) for text in corpus.texts]
    document, start, end, texts = [], [], [], []
    for position, (text, prefix, spans) in enumerate(zip(corpus.texts, prefixes, ranges)):
        for a, b in spans:
            document.append(position)
            start.append(a)
            end.append(b)
            texts.append(prefix + text[a:b])
    passages = Passages(corpus.ids, document, start, end, texts)
    if tokenizer is not None:
        check_lengths(passages, tokenizer)
    return passages


def _unit_ranges(spans: np.ndarray, length: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """Character ranges of windows of ``size`` units (sentences or words)."""
    if len(spans) == 0:
        return [(0, length)]
    return [(int(spans[a, 0]), int(spans[b - 1, 1])) for a, b in windows(len(spans), size, overlap)]


def _token_ranges(texts: Sequence[str], prefixes: Sequence[str], segmentation: Segmentation,
                  tokenizer: Tokenizes) -> list[list[tuple[int, int]]]:
    """Character ranges of token windows, each document's budget lowered by its title's tokens."""
    limit = int(tokenizer.max_tokens)
    size = segmentation.size or limit
    distinct = sorted(set(prefixes) - {""})
    prefix_tokens = dict(zip(distinct, map(len, tokenizer.token_spans(distinct)))) if distinct else {}
    out = []
    for text, prefix, spans in zip(texts, prefixes, tokenizer.token_spans(list(texts))):
        budget = size - prefix_tokens.get(prefix, 0) if segmentation.size is None else size
        budget = max(budget, segmentation.overlap + 1)
        if len(spans) == 0:
            out.append([(0, len(text))])
            continue
        found = windows(len(spans), budget, segmentation.overlap, word_starts(spans))
        out.append([(int(spans[a, 0]), int(spans[b - 1, 1])) for a, b in found])
    return out


def check_lengths(passages: Passages, tokenizer: Tokenizes) -> int:
    """Warn (with counts) when passages are longer than the encoder takes; returns how many are."""
    limit = int(tokenizer.max_tokens)
    lengths = np.fromiter((len(s) for s in tokenizer.token_spans(list(passages.texts))), dtype=np.int64,
                          count=len(passages))
    over = int((lengths > limit).sum())
    if over:
        name = getattr(tokenizer, "name", type(tokenizer).__name__)
        warnings.warn(f"{over} of {len(passages)} passages are longer than the {limit} tokens encoder "
                      f"{name!r} takes (longest: {int(lengths.max())} tokens) and will be truncated by it; "
                      "segment by tokens, or lower size", UserWarning, stacklevel=3)
    return over
