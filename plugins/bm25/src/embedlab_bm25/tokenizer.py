"""Text -> tokens, by one of two analyzers:

* ``regex`` (bm25s's): optional lowercasing, a token regex, English stopwords, PyStemmer stemming,
  in the order bm25s applies them (lowercase, split, drop stopwords, stem);
* ``lucene``: Lucene's ``EnglishAnalyzer`` chain as Anserini/Pyserini index BEIR ("flat"): Unicode
  word segmentation (UAX #29, what ``StandardTokenizer`` implements; here by the ``regex`` module's
  default word boundaries), tokens holding a letter or digit, possessive ``'s`` removed, lowercased,
  English stopwords, then the stemmer (``porter`` for Lucene's ``PorterStemFilter``).
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
ANALYZERS = ("regex", "lucene")
#: Splits text at the Unicode default word boundaries (UAX #29), as Lucene's StandardTokenizer does.
_WORD_BOUNDARY = regex.compile(r"(?w)\b")
#: StandardTokenizer emits the segments that hold a letter or a digit (words, numbers, ideographs).
_HAS_WORD_CHARACTER = regex.compile(r"[\p{L}\p{N}]").search
#: Lucene's EnglishPossessiveFilter: a trailing 's after an apostrophe, right quote or fullwidth one.
_POSSESSIVE = ("'s", "'S", "\u2019s", "\u2019S", "\uff07s", "\uff07S")


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
        if self.analyzer == "lucene":
            tokens = lucene_words(text)
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
