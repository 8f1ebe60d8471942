"""English stopwords: Lucene's ``EnglishAnalyzer.ENGLISH_STOP_WORDS_SET`` (33 words), the list
bm25s uses for ``stopwords="english"``, so that tokenisation matches the reference exactly."""

from __future__ import annotations

ENGLISH: frozenset[str] = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they",
    "this", "to", "was", "will", "with",
))
