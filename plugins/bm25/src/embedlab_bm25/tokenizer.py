"""Text -> tokens: optional lowercasing, a token regex, English stopwords and PyStemmer stemming,
in the order bm25s applies them (lowercase, split, drop stopwords, stem)."""

from __future__ import annotations

import re
from itertools import filterfalse
from typing import Any, Sequence

from tqdm.auto import tqdm

from embedlab.errors import ConfigError
from embedlab.texts import check_texts
from embedlab_bm25.stopwords import ENGLISH

#: Inputs shorter than this are tokenised without a progress bar.
PROGRESS_MIN_TEXTS = 20_000


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
                 stopwords: bool = True, stemmer: str | None = None) -> None:
        self.lowercase = lowercase
        self._findall = re.compile(token_pattern).findall
        self.stopwords = ENGLISH if stopwords else frozenset()
        self._stemmer = load_stemmer(stemmer) if stemmer is not None else None

    def __call__(self, text: str) -> list[str]:
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
