"""Text -> tokens, by one of three analyzers:

* ``regex`` (bm25s's): optional lowercasing, a token regex, English stopwords, PyStemmer stemming,
  in the order bm25s applies them (lowercase, split, drop stopwords, stem);
* ``lucene``: Lucene's ``EnglishAnalyzer`` chain as Anserini/Pyserini index BEIR ("flat"): Unicode
  word segmentation (UAX #29, what ``StandardTokenizer`` implements; here by the ``regex`` module's
  default word boundaries), tokens holding a letter or digit, possessive ``'s`` removed, lowercased,
  English stopwords, then the stemmer (``porter`` for Lucene's ``PorterStemFilter``);
* ``code``: for source code and the prose that describes it: every identifier (runs of word
  characters) is kept whole and split into its parts at underscores, case changes and digits
  (``_abc_register`` -> ``abc_register``, ``abc``, ``register``; ``JSONDecoder`` -> ``jsondecoder``,
  ``json``, ``decoder``), so that a docstring's words match the names in the code; parts of one
  character are dropped; then lowercase, stopwords and the stemmer as in ``regex``.
"""

from __future__ import annotations

import re
from itertools import filterfalse
from typing import Any, Sequence

import regex
from tqdm.auto import tqdm

from embedlab.errors import ConfigError
from embedlab.texts import check_texts
from embedlab_bm25.stopwords import ENGLISH

#: Inputs shorter than this are tokenised without a progress bar.
PROGRESS_MIN_TEXTS = 20_000
ANALYZERS = ("regex", "lucene", "code")
#: Splits text at the Unicode default word boundaries (UAX #29), as Lucene's StandardTokenizer does.
_WORD_BOUNDARY = regex.compile(r"(?w)\b")
#: StandardTokenizer emits the segments that hold a letter or a digit (words, numbers, ideographs).
_HAS_WORD_CHARACTER = regex.compile(r"[\p{L}\p{N}]").search
#: Lucene's EnglishPossessiveFilter: a trailing 's after an apostrophe, right quote or fullwidth one.
_POSSESSIVE = ("'s", "'S", "\u2019s", "\u2019S", "\uff07s", "\uff07S")


#: Runs of word characters (identifiers, words, numbers).
_IDENTIFIER = re.compile(r"\w+")
#: The parts of one identifier: an acronym before a capitalised word (``JSON`` in ``JSONDecoder``),
#: a (capitalised) lower-case word, an all-capitals run, a number.
_IDENTIFIER_PART = regex.compile(r"\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{L}+|\p{N}+")


def code_words(text: str) -> list[str]:
    """Identifiers of ``text`` (leading/trailing underscores stripped), each followed by its parts
    when it has more than one; tokens of one character are dropped (case kept)."""
    words = []
    for identifier in _IDENTIFIER.findall(text):
        whole = identifier.strip("_")
        parts = _IDENTIFIER_PART.findall(whole)
        if len(whole) > 1:
            words.append(whole)
        if len(parts) > 1:
            words.extend(part for part in parts if len(part) > 1)
    return words


def lucene_words(text: str) -> list[str]:
    """StandardTokenizer-style tokens of ``text`` with possessives removed (case kept)."""
    words = [w for w in _WORD_BOUNDARY.split(text) if _HAS_WORD_CHARACTER(w)]
    return [w[:-2] if w.endswith(_POSSESSIVE) else w for w in words]


def load_stemmer(language: str) -> Any:
    """A PyStemmer stemmer for ``language`` (e.g. ``"english"``), with install advice if missing."""
    try:
        import Stemmer
    except ImportError:
        raise ConfigError(f"bm25: stemmer={language!r} needs PyStemmer: "
                          "pip install 'embedlab-bm25[stem]'") from None
    if language not in Stemmer.algorithms():
        raise ConfigError(f"bm25: unknown stemmer {language!r}; PyStemmer offers "
                          f"{', '.join(sorted(Stemmer.algorithms()))}")
    return Stemmer.Stemmer(language)


class Tokenizer:
    """Callable turning one text into its list of tokens."""

    def __init__(self, lowercase: bool = True, token_pattern: str = r"(?u)\b\w\w+\b",
                 stopwords: bool = True, stemmer: str | None = None, analyzer: str = "regex") -> None:
        if analyzer not in ANALYZERS:
            raise ConfigError(f"bm25: unknown analyzer {analyzer!r}; choose one of {', '.join(ANALYZERS)}")
        self.lowercase = lowercase
        self.analyzer = analyzer
        self._findall = re.compile(token_pattern).findall
        self.stopwords = ENGLISH if stopwords else frozenset()
        self._stemmer = load_stemmer(stemmer) if stemmer is not None else None

    def __call__(self, text: str) -> list[str]:
        if self.analyzer in ("lucene", "code"):
            tokens = lucene_words(text) if self.analyzer == "lucene" else code_words(text)
            if self.lowercase:
                tokens = [t.lower() for t in tokens]
        else:
            tokens = self._findall(text.lower() if self.lowercase else text)
        if self.stopwords:
            tokens = list(filterfalse(self.stopwords.__contains__, tokens))
        if self._stemmer is not None:
            tokens = self._stemmer.stemWords(tokens)
        return tokens

    def tokenize(self, texts: Sequence[str], what: str = "texts") -> list[list[str]]:
        """Tokens of every text, after checking that ``texts`` is a sequence of strings."""
        items = check_texts(texts, f"bm25 {what}")
        return [self(text) for text in tqdm(items, desc=f"bm25: tokenize {what}", unit="text",
                                            disable=len(items) < PROGRESS_MIN_TEXTS, leave=False)]
