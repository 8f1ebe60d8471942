"""Extractive descriptions of documents: key terms and key sentences by tf-idf.

What the generative-retrieval variants use where the papers use a trained generator (no generator
can be downloaded here): SE-DSI's elaborative-description ids and rehearsal contents
(embedlab-se-dsi) and DSI++'s pseudo-queries for replay (embedlab-dsi-pp). Words are lower-cased
runs of letters, digits and underscores (identifiers stay whole), at least ``min_length`` long and
not only digits; idf is ``log(N / df)`` over the corpus given.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import attrs

from embedlab.segmentation import sentence_spans

_WORD = re.compile(r"[^\W_][\w]*", re.UNICODE)


def words(text: str, min_length: int = 3) -> list[str]:
    """The words of ``text`` (see the module docstring), in order."""
    return [w for w in (m.group().lower() for m in _WORD.finditer(text)) if len(w) >= min_length and not w.isdigit()]


@attrs.frozen(eq=False)
class TermWeights:
    """Document frequencies of a corpus, to weight the terms of its documents."""

    df: dict[str, int]
    n_documents: int
    min_length: int = 3

    @classmethod
    def fit(cls, documents: Sequence[str], min_length: int = 3) -> TermWeights:
        df: Counter[str] = Counter()
        for text in documents:
            df.update(set(words(text, min_length)))
        return cls(dict(df), len(documents), min_length)

    def idf(self, term: str) -> float:
        return math.log(max(self.n_documents, 1) / self.df.get(term, 1))

    def scores(self, text: str) -> dict[str, float]:
        """tf-idf of every word of ``text``."""
        return {term: count * self.idf(term) for term, count in Counter(words(text, self.min_length)).items()}

    def key_terms(self, text: str, n: int) -> list[str]:
        """The ``n`` highest tf-idf words of ``text`` (ties: earlier first occurrence first)."""
        scores = self.scores(text)
        first = {w: i for i, w in reversed(list(enumerate(words(text, self.min_length))))}
        return sorted(scores, key=lambda w: (-scores[w], first[w]))[:n]

    def key_sentences(self, text: str, n: int) -> list[str]:
        """The ``n`` sentences of ``text`` with the highest mean tf-idf per word (in text order)."""
        spans = sentence_spans(text)
        sentences = [text[int(s):int(e)].strip() for s, e in spans]
        sentences = [s for s in sentences if words(s, self.min_length)]
        ranked = sorted(range(len(sentences)), key=lambda i: -self._mean_score(sentences[i]))[:n]
        return [sentences[i] for i in sorted(ranked)]

    def _mean_score(self, sentence: str) -> float:
        terms = words(sentence, self.min_length)
        return sum(self.idf(t) for t in terms) / len(terms)
