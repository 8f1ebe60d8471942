"""``maxsim``: ColBERT-style late-interaction reranking of any first stage's top k."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from embedlab.cache import EmbeddingCache, texts_hash
from embedlab.components import Component
from embedlab.dataset import Corpus, Queries
from embedlab.embeddings import MultiVectorEmbeddings
from embedlab.errors import InvalidInputError
from embedlab.index.maxsim import maxsim_scores
from embedlab.ranking import Ranking
from embedlab_transformers.config_fields import (
    backend_field,
    flag_field,
    int_at_least,
    max_length_field,
    model_path_field,
    progress_field,
    threads_field,
)
from embedlab_transformers.encoder import TransformersEncoder


class MaxSim(Component):
    """Rescore each query's top ``k`` candidates by sum over query tokens of the best document token
    similarity (L2-normalised token vectors of a transformer) and reorder them.

    With ``keep_tail`` (default) the first stage's documents below rank ``k`` follow the reranked
    ones in their original order, scored below every reranked document, so recall at depths beyond
    ``k`` is the first stage's. Document token vectors are cached per document id for the life of
    the instance (the cache is dropped when a different corpus is passed); inside a pipeline with an
    embedding cache, encoded batches are also stored on disk, so a rerun encodes nothing.
    """

    kind = "reranker"
    name = "maxsim"

    @attrs.frozen(kw_only=True)
    class Config:
        """``k``: candidates reranked per query; the rest configure the internal token encoder."""

        model_path: str | None = model_path_field()
        max_length: int | None = max_length_field(None)
        batch_size: int = attrs.field(default=32, validator=int_at_least(1))
        k: int = attrs.field(default=100, validator=int_at_least(1))
        keep_tail: bool = flag_field(True)
        backend: str = backend_field()
        num_threads: int | None = threads_field()
        show_progress: bool = progress_field()

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        c = self.config
        self.encoder = TransformersEncoder(model_path=c.model_path, max_length=c.max_length,
                                           batch_size=c.batch_size, output="tokens", normalize=True,
                                           backend=c.backend, num_threads=c.num_threads,
                                           show_progress=c.show_progress)
        self._cache: dict[str, np.ndarray] = {}
        self._cached_corpus = ""
        self._disk_cache: EmbeddingCache | None = None

    def use_cache(self, cache: EmbeddingCache) -> None:
        """Store encoded token vectors in the pipeline's on-disk embedding cache."""
        self._disk_cache = cache

    def _encode(self, role: str, texts: list[str]) -> MultiVectorEmbeddings:
        method = self.encoder.encode_queries if role == "queries" else self.encoder.encode_documents
        if self._disk_cache is None:
            return method(texts)
        key = self._disk_cache.key(self.encoder, role, texts_hash(texts))
        return self._disk_cache.get_or_compute(key, lambda: method(texts)).embeddings

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        k = min(self.config.k, ranking.k)
        doc_ids = ranking.doc_ids[:, :k]
        if len(ranking) == 0 or k == 0:
            return ranking
        present = doc_ids != ""
        unique = np.unique(doc_ids[present])
        candidates = np.where(present, np.searchsorted(unique, doc_ids), -1)
        query_vectors = self._encode("queries", self._query_texts(ranking.query_ids, queries))
        scores = maxsim_scores(query_vectors, self.document_vectors(unique, corpus), candidates)
        order = np.argsort(-scores, axis=1, kind="stable")
        head = Ranking(ranking.query_ids, np.take_along_axis(doc_ids, order, axis=1),
                       np.take_along_axis(scores, order, axis=1))
        return head if not self.config.keep_tail else _append_tail(head, ranking)

    def document_vectors(self, doc_ids: np.ndarray, corpus: Corpus) -> MultiVectorEmbeddings:
        """Token vectors of these documents (``title + " " + text``), encoding only uncached ones."""
        if corpus.content_hash != self._cached_corpus:
            self._cache.clear()
            self._cached_corpus = corpus.content_hash
        ids = [str(d) for d in doc_ids]
        unknown = [d for d in ids if d not in corpus.position]
        if unknown:
            raise InvalidInputError(f"maxsim: {len(unknown)} ranked document id(s) are not in the corpus, "
                                    f"e.g. {unknown[:5]}; rerank with the corpus the first stage searched")
        missing = [d for d in ids if d not in self._cache]
        if missing:
            documents = corpus.documents()
            encoded = self._encode("documents", [documents[corpus.position[d]] for d in missing])
            self._cache.update((d, encoded.item(i)) for i, d in enumerate(missing))
        return MultiVectorEmbeddings.from_list([self._cache[d] for d in ids], dim=self.encoder.dim)

    @staticmethod
    def _query_texts(query_ids: np.ndarray, queries: Queries) -> list[str]:
        position = {q: i for i, q in enumerate(queries.ids.tolist())}
        unknown = [q for q in query_ids.tolist() if q not in position]
        if unknown:
            raise InvalidInputError(f"maxsim: {len(unknown)} ranked query id(s) are not in the queries, "
                                    f"e.g. {unknown[:5]}")
        return [queries.texts[position[q]] for q in query_ids.tolist()]


def _append_tail(head: Ranking, ranking: Ranking) -> Ranking:
    """``head`` (the reranked top k) followed by the rest of ``ranking``, scored strictly below it."""
    tail_ids = ranking.doc_ids[:, head.k:]
    if tail_ids.shape[1] == 0:
        return head
    finite = np.where(np.isfinite(head.scores), head.scores, np.inf)
    floor = np.min(finite, axis=1, keepdims=True)
    floor = np.where(np.isfinite(floor), floor, 0.0)
    tail_scores = floor - 1.0 - np.arange(tail_ids.shape[1])[None, :]
    tail_scores = np.where(tail_ids != "", tail_scores, -np.inf)
    return Ranking(head.query_ids, np.concatenate([head.doc_ids, tail_ids], axis=1),
                   np.concatenate([head.scores, tail_scores], axis=1))
