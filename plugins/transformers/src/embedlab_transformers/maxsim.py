"""``maxsim``: ColBERT-style late-interaction reranking of any first stage's top k."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from embedlab.cache import EmbeddingCache
from embedlab.components import Component
from embedlab.dataset import Corpus, Queries
from embedlab.embeddings import MultiVectorEmbeddings
from embedlab.index.maxsim import maxsim_scores
from embedlab.ranking import Ranking
from embedlab.rerank import document_positions, encode_cached, query_texts, reorder
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

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        k = min(self.config.k, ranking.k)
        doc_ids = ranking.doc_ids[:, :k]
        if len(ranking) == 0 or k == 0:
            return ranking
        present = doc_ids != ""
        unique, codes = np.unique(doc_ids[present], return_inverse=True)
        candidates = np.full(doc_ids.shape, -1, dtype=np.int64)
        candidates[present] = codes.ravel()
        query_vectors = encode_cached(self.encoder, "queries", query_texts(ranking, queries, self.name),
                                      self._disk_cache)
        scores = maxsim_scores(query_vectors, self.document_vectors(unique, corpus), candidates)
        return reorder(ranking, scores, keep_tail=self.config.keep_tail)

    def document_vectors(self, doc_ids: np.ndarray, corpus: Corpus) -> MultiVectorEmbeddings:
        """Token vectors of these documents (``title + " " + text``), encoding only uncached ones."""
        if corpus.content_hash != self._cached_corpus:
            self._cache.clear()
            self._cached_corpus = corpus.content_hash
        document_positions(doc_ids, corpus, self.name)
        ids = [str(d) for d in doc_ids]
        missing = [d for d in ids if d not in self._cache]
        if missing:
            documents = corpus.documents()
            encoded = encode_cached(self.encoder, "documents", [documents[corpus.position[d]] for d in missing],
                                    self._disk_cache)
            self._cache.update((d, encoded.item(i)) for i, d in enumerate(missing))
        return MultiVectorEmbeddings.from_list([self._cache[d] for d in ids], dim=self.encoder.dim)
