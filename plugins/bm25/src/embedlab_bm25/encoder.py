"""The ``bm25`` encoder: documents become BM25 term weights, queries term counts, so that
``queries @ documents.T`` is the Okapi BM25 score matrix."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab.texts import check_texts
from embedlab_bm25.scoring import METHODS, document_weights, idf, lucene_lengths, term_counts, vocabulary_of
from embedlab_bm25.tokenizer import ANALYZERS, Tokenizer


def _positive_number(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _unit_interval(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be a number in [0, 1], got {value!r}")


def _regex(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    try:
        re.compile(value)
    except re.error as error:
        raise ValueError(f"{attribute.name} {value!r} is not a valid regular expression: {error}") from None


def _analyzer(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in ANALYZERS:
        raise ValueError(f"unknown analyzer {value!r}; choose one of {', '.join(ANALYZERS)}")


@attrs.frozen
class BM25Config:
    """BM25 parameters (defaults are bm25s's: k1=1.5, b=0.75, method="lucene") and tokenisation
    (defaults are ``bm25s.tokenize``'s: lowercase, scikit-learn's token regex, English stopwords).

    Pyserini's BM25 "flat" (Anserini ``-bm25`` over title + text) is ``k1=0.9, b=0.4,
    analyzer="lucene", stemmer="porter", lucene_norms=True``."""

    k1: float = attrs.field(default=1.5, validator=_positive_number)
    b: float = attrs.field(default=0.75, validator=_unit_interval)
    method: str = attrs.field(default="lucene", validator=attrs.validators.in_(METHODS))
    lowercase: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    token_pattern: str = attrs.field(default=r"(?u)\b\w\w+\b",
                                     validator=[attrs.validators.instance_of(str), _regex])
    stopwords: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    stemmer: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.instance_of(str)))
    #: ``regex`` (bm25s's tokenisation, ``token_pattern``) or ``lucene`` (Lucene's EnglishAnalyzer chain).
    analyzer: str = attrs.field(default="regex", validator=_analyzer)
    #: Round document lengths as Lucene's one-byte norms do (exact below 24 tokens).
    lucene_norms: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))


class BM25(Component):
    """Okapi BM25 as a sparse encoder; call :meth:`fit` on the corpus before encoding.

    >>> bm25 = BM25(k1=1.2).fit(["the cat sat", "a dog barked"])
    >>> float((bm25.encode_queries(["cat"]) @ bm25.encode_documents(["the cat sat"]).T).toarray()[0, 0]) > 0
    True
    """

    kind = "encoder"
    name = "bm25"
    Config = BM25Config

    def __init__(self, config: BM25Config | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        c = self.config
        self.tokenizer = Tokenizer(c.lowercase, c.token_pattern, c.stopwords, c.stemmer, c.analyzer)
        self._vocabulary: np.ndarray | None = None
        self._columns: dict[str, int] = {}
        self._corpus_counts: tuple[list[str], sp.csr_matrix, np.ndarray] | None = None
        self._idf = np.zeros(0)
        self._avgdl = 0.0
        self._n_docs = 0

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.SPARSE

    @property
    def is_fitted(self) -> bool:
        return self._vocabulary is not None

    @property
    def vocabulary(self) -> np.ndarray:
        """Sorted vocabulary; column ``j`` of every output is the term ``vocabulary[j]``."""
        return self._fitted()

    @property
    def idf(self) -> np.ndarray:
        """Inverse document frequency of every vocabulary term."""
        self._fitted()
        return self._idf

    @property
    def avgdl(self) -> float:
        """Average document length (tokens) of the fitted corpus."""
        self._fitted()
        return self._avgdl

    @property
    def dim(self) -> int:
        """Vocabulary size (0 before ``fit``, so that protocol checks never raise)."""
        return 0 if self._vocabulary is None else int(self._vocabulary.size)

    def fit(self, documents: Sequence[str]) -> BM25:
        """Build the vocabulary, document frequencies, idf and average length from ``documents``.

        The corpus term counts are kept until ``encode_documents`` receives the same texts (the
        usual fit-then-encode), so that the corpus is tokenised once.
        """
        items = check_texts(documents, "bm25 documents")
        tokens = self.tokenizer.tokenize(items, "documents")
        if not tokens:
            raise InvalidInputError("bm25: cannot fit on an empty corpus; pass at least one document")
        vocabulary = vocabulary_of(tokens)
        if vocabulary.size == 0:
            raise InvalidInputError(
                f"bm25: all {len(tokens)} documents are empty after tokenisation (token_pattern="
                f"{self.config.token_pattern!r}, stopwords={self.config.stopwords}); nothing to index")
        self._set_vocabulary(vocabulary)
        counts, lengths = term_counts(tokens, self._columns, vocabulary.size)
        doc_freq = np.bincount(counts.indices, minlength=vocabulary.size)
        self._corpus_counts = (items, counts, lengths)
        self._n_docs = int(lengths.size)
        self._idf = idf(doc_freq, self._n_docs, self.config.method)
        self._avgdl = float(lengths.mean())
        return self

    def encode_documents(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``(n, vocabulary)`` float32 CSR of BM25 term weights (length = all tokens of the text)."""
        vocabulary = self._fitted()
        items = check_texts(texts, "bm25 documents")
        if self._corpus_counts is not None and self._corpus_counts[0] == items:
            _, counts, lengths = self._corpus_counts
            self._corpus_counts = None
        else:
            counts, lengths = term_counts(self.tokenizer.tokenize(items, "documents"), self._columns,
                                          vocabulary.size)
        c = self.config
        if c.lucene_norms:
            lengths = lucene_lengths(lengths)
        return document_weights(counts, lengths, self._idf, self._avgdl, c.k1, c.b, c.method)

    def encode_queries(self, texts: Sequence[str]) -> sp.csr_matrix:
        """``(n, vocabulary)`` float32 CSR of query term counts; unknown terms are dropped and a
        repeated term counts once per occurrence (as in bm25s and rank_bm25)."""
        vocabulary = self._fitted()
        counts, _ = term_counts(self.tokenizer.tokenize(texts, "queries"), self._columns, vocabulary.size)
        return counts

    def save(self, path: str | Path) -> None:
        """Write vocabulary and idf as ``.npy`` and the corpus statistics in the manifest."""
        vocabulary = self._fitted()
        save_state(path, self, arrays={"vocabulary": vocabulary, "idf": self._idf},
                   meta={"avgdl": self._avgdl, "n_docs": self._n_docs})

    @classmethod
    def load(cls, path: str | Path) -> BM25:
        """Load an encoder written by :meth:`save` (checksums and structure verified)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        encoder = state.build(cls)
        vocabulary = state.array("vocabulary", kinds="U", ndim=1)
        encoder._idf = np.asarray(state.array("idf", kinds="f", shape=vocabulary.shape, finite=True), np.float64)
        if len(set(vocabulary.tolist())) != vocabulary.size:
            raise state.error("vocabulary.npy holds duplicate terms")
        encoder._set_vocabulary(vocabulary)
        encoder._avgdl = float(state.value("avgdl", (int, float), minimum=0))
        encoder._n_docs = state.value("n_docs", int, minimum=0)
        return encoder

    def _set_vocabulary(self, vocabulary: np.ndarray) -> None:
        self._vocabulary = vocabulary
        self._columns = {term: column for column, term in enumerate(vocabulary.tolist())}

    def _fitted(self) -> np.ndarray:
        if self._vocabulary is None:
            raise NotFittedError("bm25: call fit(documents) on the corpus before encoding or saving")
        return self._vocabulary
