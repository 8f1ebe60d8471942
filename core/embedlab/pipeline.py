"""Pipelines: encoder -> optional compressor -> index -> optional reranker.

Compose them in Python::

    pipeline = Pipeline.from_names(encoder="minilm", index={"name": "faiss", "factory": "HNSW32"},
                                   reranker="maxsim")
    report = pipeline.build(dataset.corpus)
    ranking = pipeline.search(split.queries, k=100)

or from a TOML ``[[pipeline]]`` table (see :mod:`embedlab.experiment.config`).
Every stage is explicit: a trainable encoder (BM25) is fitted on the corpus documents and a
compressor on a seeded sample of the document vectors, each in its own timed stage. Given a
training split (``build(corpus, train=dataset.split("train"))``), components that learn from judged
queries (:class:`~embedlab.protocols.LearnsFromQueries`) are trained on it instead, and a reranker
that learns is trained on the first stage's ranking of the training queries.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab import embeddings as emb
from embedlab.cache import EmbeddingCache, texts_hash
from embedlab.components import fingerprint
from embedlab.dataset import Corpus, Exclusions, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.executors import Executor, LocalExecutor, create_executor
from embedlab.protocols import (
    AcceptsCompressor,
    Compressor,
    Encoder,
    GraphEncoder,
    Index,
    LearnsFromQueries,
    Reranker,
    Trainable,
    UsesEmbeddingCache,
)
from embedlab.ranking import Ranking
from embedlab.shards import DEFAULT_CHUNK_SIZE, ChunkStore
from embedlab.training import TrainingData

ComponentSpec = str | Mapping[str, Any] | None


def create_component(kind: str, spec: ComponentSpec) -> Any:
    """Build a component from ``"name"`` or ``{"name": ..., **params}`` through the registry."""
    from embedlab import registry

    if spec is None:
        return None
    if isinstance(spec, str):
        return registry().create(kind, spec)
    params = dict(spec)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{kind}: a component table needs a string 'name'")
    return registry().create(kind, name, **params)


@attrs.define
class Timings:
    """Seconds spent in each stage (query latency is per query, in milliseconds)."""

    fit_encoder_s: float = 0.0
    encode_documents_s: float = 0.0
    fit_compressor_s: float = 0.0
    index_s: float = 0.0
    fit_reranker_s: float = 0.0
    encode_queries_s: float = 0.0
    search_s: float = 0.0
    rerank_s: float = 0.0
    n_queries: int = 0
    cache_hits: int = 0

    @property
    def build_s(self) -> float:
        return self.fit_encoder_s + self.encode_documents_s + self.fit_compressor_s + self.index_s + self.fit_reranker_s

    @property
    def latency_ms(self) -> float:
        """Mean time per query of encoding, search and reranking (batched)."""
        total = self.encode_queries_s + self.search_s + self.rerank_s
        return 1000.0 * total / max(self.n_queries, 1)


@attrs.define
class Pipeline:
    """A retrieval pipeline over one corpus."""

    encoder: Encoder
    index: Index
    compressor: Compressor | None = None
    reranker: Reranker | None = None
    name: str = "pipeline"
    cache: EmbeddingCache | None = None
    fit_sample: int = attrs.field(default=100_000, validator=attrs.validators.gt(0))
    seed: int = 0
    #: Depth of the first-stage ranking of the training queries that a learning reranker is given.
    train_depth: int = attrs.field(default=100, validator=attrs.validators.gt(0))
    #: Corpora larger than this are encoded in chunks of this many documents, each persisted in the
    #: cache as soon as it is done (a killed run resumes), and indexes that can are built one chunk
    #: at a time (:class:`~embedlab.protocols.BuildsFromChunks`). Needs ``cache``.
    chunk_size: int = attrs.field(default=DEFAULT_CHUNK_SIZE, validator=attrs.validators.gt(0))
    #: Where encoding and index building run (:mod:`embedlab.executors`): None or "local" for
    #: this process, or an executor name / ``{"name": ..., **params}`` / object (e.g. "ray").
    #: A non-local executor always encodes in chunks (into a temporary cache when there is none).
    executor: Executor = attrs.field(default=None, converter=create_executor)
    progress: bool = True
    timings: Timings = attrs.field(factory=Timings)
    corpus: Corpus | None = attrs.field(default=None, init=False)
    _context: str = attrs.field(default="", init=False)

    @classmethod
    def from_names(cls, *, encoder: ComponentSpec, index: ComponentSpec = "exact",
                   compressor: ComponentSpec = None, reranker: ComponentSpec = None,
                   **options: Any) -> Pipeline:
        """Build every stage through the registry by name (or ``{"name": ..., **params}``)."""
        return cls(encoder=create_component("encoder", encoder), index=create_component("index", index),
                   compressor=create_component("compressor", compressor),
                   reranker=create_component("reranker", reranker), **options)

    def fingerprints(self) -> dict[str, str]:
        """Fingerprint of every configured stage."""
        stages = {"encoder": self.encoder, "compressor": self.compressor, "index": self.index,
                  "reranker": self.reranker}
        return {stage: fingerprint(c) for stage, c in stages.items() if c is not None}

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Fit (where trainable), encode and index the corpus; ``train`` is a judged split that
        components which learn from queries are trained on (never pass the evaluated split)."""
        documents = corpus.documents()
        self.timings = Timings()
        self.corpus = None
        if self.cache is not None and isinstance(self.reranker, UsesEmbeddingCache):
            self.reranker.use_cache(self.cache)
        learns = train is not None and isinstance(self.encoder, LearnsFromQueries)
        start = time.perf_counter()
        if isinstance(self.encoder, GraphEncoder):
            self.encoder.fit_graph(_graph_of(corpus, self.encoder))
            learns = False
        elif learns:
            self.encoder.fit_queries(TrainingData(corpus, train))
        elif isinstance(self.encoder, Trainable):
            self.encoder.fit(documents)
        self.timings.fit_encoder_s = time.perf_counter() - start
        self._context = _fit_context(self.encoder, corpus, train if learns else None)
        distributed = not isinstance(self.executor, LocalExecutor)
        if distributed and self.cache is None:
            with tempfile.TemporaryDirectory(prefix="embedlab-chunks-") as scratch:
                self.cache = EmbeddingCache(scratch)
                try:
                    self._build_from_chunks(self._encode_chunks(corpus.content_hash, documents), corpus, train)
                finally:
                    self.cache = None
        elif self.cache is not None and (distributed or len(documents) > self.chunk_size):
            self._build_from_chunks(self._encode_chunks(corpus.content_hash, documents), corpus, train)
        else:
            encoded, self.timings.encode_documents_s = self._encode("documents", corpus.content_hash, documents)
            self._build_index(encoded, corpus, train)
        self.corpus = corpus
        return self.timings

    def _stages_learn(self, train: Split | None) -> bool:
        """Whether a compressor or reranker will be trained on ``train``'s queries."""
        return train is not None and any(isinstance(c, LearnsFromQueries) for c in (self.compressor, self.reranker))

    def _learning_inputs(self, train: Split | None) -> emb.Embeddings | None:
        """The training queries' vectors, encoded once for every learning stage (None if no stage learns)."""
        if train is None or not self._stages_learn(train):
            return None
        return self._encode("queries", train.queries.content_hash, list(train.queries.texts))[0]

    def _build_index(self, encoded: emb.Embeddings, corpus: Corpus, train: Split | None) -> None:
        train_queries = self._learning_inputs(train)
        vectors = encoded
        if self.compressor is not None:
            data = TrainingData(corpus, train, train_queries, encoded) if train_queries is not None else None
            vectors = self._apply_compressor(encoded, data)
        start = time.perf_counter()
        self.index.build(vectors, corpus.attributes or None)
        self.timings.index_s = time.perf_counter() - start
        self._fit_reranker(encoded, corpus, train, train_queries)

    def _build_from_chunks(self, chunks: ChunkStore, corpus: Corpus, train: Split | None) -> None:
        """Like :meth:`_build_index` without holding every vector at once where the stages allow:
        the compressor fits on a sample read from the chunks and the index, when it can, reads the
        chunks one at a time. Learning stages get all vectors (they train on them)."""
        if self._stages_learn(train):
            self._build_index(chunks.gather(), corpus, train)
            return
        if self.compressor is not None:
            sample = chunks.take(self._fit_positions(len(chunks)))
            start = time.perf_counter()
            self.compressor.fit(emb.as_dense(sample, name=f"pipeline {self.name!r} compressor input"))
            self.timings.fit_compressor_s = time.perf_counter() - start
        start = time.perf_counter()
        self.index = self.executor.build_index(self.index, chunks, corpus.attributes or None, self.compressor)
        self.timings.index_s = time.perf_counter() - start

    def _fit_reranker(self, encoded: emb.Embeddings, corpus: Corpus, train: Split | None,
                      train_queries: emb.Embeddings | None) -> None:
        if train_queries is not None and isinstance(self.reranker, LearnsFromQueries):
            assert train is not None
            result = self.index.search(train_queries, min(self.train_depth, len(corpus)))
            first_stage = Ranking.from_search(train.queries.ids, result, corpus.ids)
            start = time.perf_counter()
            self.reranker.fit_queries(TrainingData(corpus, train, train_queries, encoded, first_stage))
            self.timings.fit_reranker_s = time.perf_counter() - start

    def search(self, queries: Queries, k: int = 100, filter: Any = None,
               exclude: Exclusions | None = None) -> Ranking:
        """Top-k documents for each query (after reranking, when a reranker is configured);
        ``exclude`` (``{query_id: doc_ids}``) removes documents from a query's ranking before its
        top k is taken (the query's own node and its known neighbours in link prediction)."""
        if self.corpus is None:
            raise InvalidInputError(f"pipeline {self.name!r}: call build(corpus) before search")
        if len(queries) == 0:
            raise InvalidInputError(f"pipeline {self.name!r}: no queries to search")
        vectors, self.timings.encode_queries_s = self._encode("queries", queries.content_hash, list(queries.texts))
        start = time.perf_counter()
        if exclude:
            ranking = self._search_excluding(vectors, queries, k, filter, exclude)
        else:
            result = self.index.search(vectors, k, filter=filter)
            ranking = Ranking.from_search(queries.ids, result, self.corpus.ids)
        self.timings.search_s = time.perf_counter() - start
        if self.reranker is not None:
            start = time.perf_counter()
            ranking = self.reranker.rerank(ranking, queries, self.corpus)
            self.timings.rerank_s = time.perf_counter() - start
        self.timings.n_queries = len(queries)
        return ranking

    def _search_excluding(self, vectors: emb.Embeddings, queries: Queries, k: int, filter: Any,
                          exclude: Exclusions) -> Ranking:
        """Search each query ``k`` + (its number of exclusions, rounded up to a power of two) deep,
        grouping queries of equal depth, then drop the excluded documents and keep the top k."""
        assert self.corpus is not None
        if isinstance(filter, (list, tuple)) or (isinstance(filter, np.ndarray) and filter.ndim == 2):
            raise InvalidInputError(f"pipeline {self.name!r}: per-query filters cannot be combined with "
                                    "excluded documents; fold the exclusions into the filter masks")
        n_docs = len(self.corpus)
        extra = np.array([len(exclude.get(q, ())) for q in queries.ids.tolist()])
        depths = np.minimum(k + np.where(extra > 0, 2 ** np.ceil(np.log2(np.maximum(extra, 1))), 0), n_docs)
        doc_ids = np.full((len(queries), k), "", dtype=self.corpus.ids.dtype)
        scores = np.full((len(queries), k), -np.inf)
        for depth in np.unique(depths).tolist():
            rows = np.flatnonzero(depths == depth)
            result = self.index.search(emb.take(vectors, rows), int(depth), filter=filter)
            group = Ranking.from_search(queries.ids[rows], result, self.corpus.ids).without(exclude, k)
            doc_ids[rows], scores[rows] = group.doc_ids, group.scores
        return Ranking(queries.ids, doc_ids, scores)

    def _encode(self, role: str, content_hash: str, texts: list[str]) -> tuple[emb.Embeddings, float]:
        """Vectors of ``texts`` and the seconds their encoding took (read from the cache if enabled)."""
        method = self.encoder.encode_documents if role == "documents" else self.encoder.encode_queries
        if self.cache is None:
            start = time.perf_counter()
            vectors = method(texts)
            return vectors, time.perf_counter() - start
        key = self.cache.key(self.encoder, role, content_hash, self._context)
        cached = self.cache.get_or_compute(key, lambda: method(texts))
        self.timings.cache_hits += int(cached.hit)
        return cached.embeddings, cached.seconds

    def _encode_chunks(self, content_hash: str, documents: list[str]) -> ChunkStore:
        """The corpus encoded chunk by chunk into the cache (resuming a killed run)."""
        assert self.cache is not None
        key = self.cache.key(self.encoder, "documents", content_hash, self._context)
        store = self.cache.chunk_store(key, len(documents), self.chunk_size)
        hit = store.complete
        self.executor.encode(self.encoder, documents, store, desc=f"{self.name}: encode documents",
                             progress=self.progress)
        self.timings.encode_documents_s = store.seconds()
        self.timings.cache_hits += int(hit)
        return store

    def _fit_positions(self, n: int) -> np.ndarray:
        """Sorted positions of the seeded compressor training sample (all when ``n <= fit_sample``)."""
        if n <= self.fit_sample:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, self.fit_sample, replace=False))

    def _apply_compressor(self, vectors: emb.Embeddings, train: TrainingData | None) -> emb.Embeddings:
        """Fit the compressor (on ``train`` when it learns from queries and one is given) and return
        what the index is built on."""
        assert self.compressor is not None
        dense = emb.as_dense(vectors, name=f"pipeline {self.name!r} compressor input")
        if train is not None and isinstance(self.compressor, LearnsFromQueries):
            start = time.perf_counter()
            self.compressor.fit_queries(attrs.evolve(train, document_vectors=dense))
        else:
            sample = dense if len(dense) <= self.fit_sample else dense[self._fit_positions(len(dense))]
            start = time.perf_counter()
            self.compressor.fit(sample)
        self.timings.fit_compressor_s = time.perf_counter() - start
        if isinstance(self.index, AcceptsCompressor):
            self.index.use_compressor(self.compressor)
            return dense
        return self.compressor.decode(self.compressor.encode(dense))

    @property
    def bytes_per_document(self) -> float:
        """Index memory per indexed document; the compressor's code size when the index cannot
        store codes and was built on decoded vectors (quality of the codes, size of the codes)."""
        if self.compressor is not None and not isinstance(self.index, AcceptsCompressor):
            return float(self.compressor.bytes_per_vector)
        return self.index.memory_bytes / max(len(self.index), 1)


def _graph_of(corpus: Corpus, encoder: Encoder) -> Any:
    """The graph a graph encoder is fitted on: the node corpus's (training) graph."""
    graph = getattr(corpus, "graph", None)
    if graph is None:
        raise ConfigError(f"encoder {getattr(encoder, 'name', encoder)!r} embeds the nodes of a graph, but "
                          "the corpus is text; use a graph dataset (`embedlab datasets` lists them, e.g. "
                          "karate, blogcatalog) or a NodeCorpus")
    return graph


def _fit_context(encoder: Encoder, corpus: Corpus, train: Split | None) -> str:
    """What a fitted encoder's vectors depend on besides its config: the corpus it was fitted on
    and, when trained on judged queries, that split's queries and qrels (part of the cache key)."""
    if train is not None:
        judgments = sorted(f"{q}\t{d}\t{g}" for q, docs in train.qrels.items() for d, g in docs.items())
        return f"{corpus.content_hash}|{train.queries.content_hash}|{texts_hash(judgments)}"
    if isinstance(encoder, GraphEncoder):
        return f"{corpus.content_hash}|{_graph_of(corpus, encoder).content_hash}"
    return corpus.content_hash if isinstance(encoder, Trainable) else ""
