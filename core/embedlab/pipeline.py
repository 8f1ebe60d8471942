"""Pipelines: a first stage that returns a ranking, then zero or more rerankers in sequence.

The first stage is an encoder -> optional compressor -> index
(:class:`~embedlab.retrievers.EmbeddingRetriever`), a registered component of kind ``retriever``,
or a fusion of several first stages (:class:`~embedlab.fusion.FusionRetriever`). Rerankers form a
cascade: each stage reorders the top ``depth`` documents of the previous stage's ranking (all of
them when ``depth`` is unset) and the rest follow in their earlier order. Compose them in Python::

    pipeline = Pipeline.from_names(encoder="minilm", index={"name": "faiss", "factory": "HNSW32"},
                                   reranker="maxsim")
    hybrid = Pipeline.from_names(retrievers=[{"encoder": "bm25"}, {"encoder": "minilm"}],
                                 fusion={"method": "rrf"},
                                 cascade=[{"reranker": "maxsim", "depth": 100}])
    report = pipeline.build(dataset.corpus)
    ranking = pipeline.search(split.queries, k=100)

or from a TOML ``[[pipeline]]`` table (see :mod:`embedlab.experiment.config`).
Every stage is explicit: a trainable encoder (BM25) is fitted on the corpus documents and a
compressor on a seeded sample of the document vectors, each in its own timed stage. Given a
training split (``build(corpus, train=dataset.split("train"))``), components that learn from judged
queries (:class:`~embedlab.protocols.LearnsFromQueries`) are trained on it instead, a fusion tunes
its weights on it, and a reranker that learns is trained on the previous stage's ranking of the
training queries.
"""

from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.cache import EmbeddingCache
from embedlab.components import fingerprint
from embedlab.dataset import Corpus, Exclusions, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.executors import Executor, create_executor
from embedlab.media import check_inputs
from embedlab.protocols import (
    Compressor,
    Encoder,
    Index,
    LearnsFromQueries,
    ReportsTimings,
    Reranker,
    Retriever,
    UsesEmbeddingCache,
)
from embedlab.ranking import Ranking, check_ranking_size
from embedlab.rerank import append_tail
from embedlab.retrievers import ComponentSpec, EmbeddingRetriever, create_component, first_stage, passage_stage
from embedlab.shards import DEFAULT_CHUNK_SIZE
from embedlab.timings import Timings
from embedlab.training import TrainingData

__all__ = ["ComponentSpec", "Pipeline", "RerankStage", "Timings", "create_component"]


def _depth(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ConfigError(f"cascade depth must be a positive integer, got {value!r}")


@attrs.define
class RerankStage:
    """One reranker of a cascade and how many of the previous stage's documents it reorders."""

    reranker: Reranker
    depth: int | None = attrs.field(default=None, validator=_depth)
    label: str = ""

    def __attrs_post_init__(self) -> None:
        if not self.label:
            name = getattr(self.reranker, "name", type(self.reranker).__name__)
            self.label = f"{name}@{self.depth}" if self.depth else str(name)

    def apply(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        """Rerank the top ``depth`` of ``ranking``; the documents below keep their order under them."""
        head = ranking.truncate(self.depth) if self.depth and self.depth < ranking.k else ranking
        reranked = self.reranker.rerank(head, queries, corpus)
        return append_tail(reranked, ranking) if head.k < ranking.k else reranked


def _stage(spec: Any, position: int) -> RerankStage:
    """A cascade stage from a :class:`RerankStage`, a reranker, or ``{"reranker": spec, "depth": n}``."""
    if isinstance(spec, RerankStage):
        return spec
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"reranker", "depth", "label"})
        if unknown or "reranker" not in spec:
            raise ConfigError(f"cascade stage {position}: needs 'reranker' and optional 'depth', 'label'"
                              + (f"; unknown key(s) {', '.join(unknown)}" if unknown else ""))
        reranker = spec["reranker"]
        if isinstance(reranker, (str, Mapping)):
            reranker = create_component("reranker", reranker)
        return RerankStage(reranker, spec.get("depth"), spec.get("label", ""))
    if isinstance(spec, (str,)):
        return RerankStage(create_component("reranker", spec))
    return RerankStage(spec)


@attrs.define
class Pipeline:
    """A retrieval pipeline over one corpus: a first stage and a cascade of rerankers.

    Give the first stage as ``encoder`` (+ ``index``, default exact, + optional ``compressor``) or
    as ``retriever``; rerankers as ``reranker`` (one stage over the whole ranking) or ``cascade``
    (stages with their own depths, applied in order).
    """

    encoder: Encoder | None = None
    index: Index | None = None
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
    #: Where an encoder first stage's encoding and index building run (:mod:`embedlab.executors`):
    #: None or "local" for this process, or an executor name / ``{"name": ..., **params}`` / object
    #: (e.g. "ray"). A non-local executor always encodes in chunks (into a temporary cache when
    #: there is none).
    executor: Executor = attrs.field(default=None, converter=create_executor)
    progress: bool = True
    timings: Timings = attrs.field(factory=Timings)
    retriever: Retriever | None = None
    cascade: list[RerankStage] = attrs.field(factory=list)
    corpus: Corpus | None = attrs.field(default=None, init=False)
    first_stage: Retriever = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.retriever is not None:
            given = [s for s in ("encoder", "index", "compressor") if getattr(self, s) is not None]
            if given:
                raise ConfigError(f"pipeline {self.name!r}: give a retriever or an encoder (+ index), not "
                                  f"both (also got {', '.join(given)})")
            if not isinstance(self.retriever, Retriever):
                raise ConfigError(f"pipeline {self.name!r}: {self.retriever!r} is not a retriever "
                                  "(needs build(corpus, train) and search(queries, k))")
            self.first_stage = self.retriever
        else:
            if self.encoder is None:
                raise ConfigError(f"pipeline {self.name!r} has no first stage: give an encoder (+ index) "
                                  "or a retriever")
            if self.index is None:
                self.index = create_component("index", "exact")
            self.first_stage = EmbeddingRetriever(self.encoder, self.index, self.compressor, self.cache,
                                                  self.fit_sample, self.seed, label=self.name,
                                                  chunk_size=self.chunk_size, executor=self.executor,
                                                  progress=self.progress)
        stages = [_stage(s, i + 1) for i, s in enumerate(self.cascade)]
        if self.reranker is not None:
            if stages:
                raise ConfigError(f"pipeline {self.name!r}: give reranker or cascade, not both")
            stages = [RerankStage(self.reranker)]
        labels = [s.label for s in stages]
        for i, stage in enumerate(stages):
            if labels.count(stage.label) > 1:
                stage.label = f"{stage.label}#{i + 1}"
        depths = [s.depth for s in stages if s.depth is not None]
        for i in range(1, len(depths)):
            if depths[i] > depths[i - 1]:
                raise ConfigError(f"pipeline {self.name!r}: cascade depth {depths[i]} follows depth "
                                  f"{depths[i - 1]}; each stage reranks a prefix of the previous one's output")
        self.cascade = stages

    @classmethod
    def from_names(cls, *, encoder: ComponentSpec = None, index: ComponentSpec = "exact",
                   compressor: ComponentSpec = None, reranker: ComponentSpec = None,
                   retriever: Any = None, retrievers: Sequence[Any] | None = None,
                   fusion: Mapping[str, Any] | None = None, cascade: Sequence[Any] = (),
                   passages: Mapping[str, Any] | None = None, **options: Any) -> Pipeline:
        """Build every stage through the registry by name (or ``{"name": ..., **params}``).

        ``retrievers`` (first-stage specs, see :mod:`embedlab.retrievers`) with ``fusion``
        (:class:`~embedlab.fusion.FusionConfig` parameters) make a fused first stage.
        ``passages`` (with ``encoder``: :class:`~embedlab.passages.PassageConfig` parameters) cuts
        documents into passages that the encoder and index work on, and scores documents from them.
        """
        chosen = [n for n, v in (("encoder", encoder), ("retriever", retriever), ("retrievers", retrievers))
                  if v is not None]
        if len(chosen) != 1:
            raise ConfigError("a pipeline's first stage is exactly one of encoder (+ index), retriever or "
                              f"retrievers (+ fusion); got {', '.join(chosen) or 'none'}")
        if fusion is not None and retrievers is None:
            raise ConfigError("fusion needs 'retrievers' (the first stages to fuse)")
        if passages is not None:
            if encoder is None:
                raise ConfigError("passages needs an encoder (+ index): it cuts documents into passages "
                                  "that the encoder encodes")
            inner = {key: options[key] for key in ("fit_sample", "seed", "chunk_size", "executor", "progress")
                     if key in options}
            retriever = passage_stage(passages, label=options.get("name", "passages"), encoder=encoder,
                                      index=index, compressor=compressor, options=inner)
            encoder = index = compressor = None
        if retrievers is not None:
            from embedlab.fusion import FusionRetriever

            retriever = FusionRetriever(retrievers=retrievers, **dict(fusion or {}))
        elif retriever is not None:
            retriever = first_stage({"retriever": retriever}) if isinstance(retriever, (str, Mapping)) \
                else retriever
        if encoder is None:
            return cls(retriever=retriever, reranker=create_component("reranker", reranker),
                       cascade=list(cascade), **options)
        return cls(encoder=create_component("encoder", encoder), index=create_component("index", index),
                   compressor=create_component("compressor", compressor),
                   reranker=create_component("reranker", reranker), cascade=list(cascade), **options)

    def fingerprints(self) -> dict[str, str]:
        """Fingerprint of every configured stage."""
        inner = getattr(self.first_stage, "fingerprints", None)
        out = dict(inner()) if callable(inner) else {"retriever": fingerprint(self.first_stage)}
        if len(self.cascade) == 1:
            out["reranker"] = fingerprint(self.cascade[0].reranker)
        else:
            out.update({f"reranker.{i}": fingerprint(s.reranker) for i, s in enumerate(self.cascade, 1)})
        return out

    def check_inputs(self, corpus: Corpus | None = None, *queries: Queries | None) -> None:
        """Fail before any work when a stage does not take the corpus's or the queries' input kinds
        (images, image + text: :mod:`embedlab.media`). An encoder first stage is judged by its
        encoder; another first stage and every reranker by their own ``input_kinds`` (text only
        when undeclared)."""
        first = self.first_stage.encoder if isinstance(self.first_stage, EmbeddingRetriever) else self.first_stage
        stages = [(first, "first stage"), *((s.reranker, f"reranker {s.label!r}") for s in self.cascade)]
        for component, stage in stages:
            where = f"pipeline {self.name!r} {stage}"
            if corpus is not None:
                check_inputs(component, "documents", corpus.input_kinds, where=where)
            for batch in queries:
                if batch is not None:
                    check_inputs(component, "queries", batch.input_kinds, where=where)

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Build the first stage on the corpus and train learning rerankers; ``train`` is a judged
        split that components which learn from queries are trained on (never the evaluated split)."""
        self.check_inputs(corpus, train.queries if train is not None else None)
        self.timings = Timings()
        self.corpus = None
        if self.cache is not None:
            for component in (self.first_stage, *(s.reranker for s in self.cascade)):
                if isinstance(component, UsesEmbeddingCache):
                    component.use_cache(self.cache)
        learners = train is not None and any(isinstance(s.reranker, LearnsFromQueries) for s in self.cascade)
        start = time.perf_counter()
        if isinstance(self.first_stage, EmbeddingRetriever):
            self.first_stage.build(corpus, train, keep_vectors=learners)
            self.index = self.first_stage.index  # an executor may return a new (sharded) index
        else:
            self.first_stage.build(corpus, train)
        seconds = time.perf_counter() - start
        self.timings.add_first_stage(attrs.evolve(self.first_stage.timings)
                                     if isinstance(self.first_stage, ReportsTimings) else Timings(index_s=seconds))
        self.corpus = corpus
        if learners:
            assert train is not None
            self._train_rerankers(corpus, train)
        return self.timings

    def _train_rerankers(self, corpus: Corpus, train: Split) -> None:
        """Train each learning reranker on the ranking of the training queries it would receive."""
        stage_one = self.first_stage
        depth = min(self.train_depth, len(corpus))
        query_vectors = document_vectors = None
        if isinstance(stage_one, EmbeddingRetriever):
            query_vectors, document_vectors = stage_one.train_query_vectors, stage_one.document_vectors
            assert query_vectors is not None
            ranking = stage_one.search_vectors(query_vectors, train.queries.ids, depth)
            stage_one.release_vectors()
        else:
            ranking = stage_one.search(train.queries, depth)
        last_learner = max(i for i, s in enumerate(self.cascade) if isinstance(s.reranker, LearnsFromQueries))
        for i, stage in enumerate(self.cascade[:last_learner + 1]):
            if isinstance(stage.reranker, LearnsFromQueries):
                head = ranking.truncate(stage.depth) if stage.depth else ranking
                start = time.perf_counter()
                stage.reranker.fit_queries(TrainingData(corpus, train, query_vectors, document_vectors, head))
                self.timings.fit_reranker_s += time.perf_counter() - start
            if i < last_learner:
                ranking = stage.apply(ranking, train.queries, corpus)

    def search(self, queries: Queries, k: int = 100, filter: Any = None,
               exclude: Exclusions | None = None) -> Ranking:
        """Top-k documents for each query, after every reranking stage, at most every document of the
        corpus; ``exclude`` (``{query_id: doc_ids}``) removes documents from a query's ranking before
        its top k is taken (the query's own node and its known neighbours in link prediction)."""
        if self.corpus is None:
            raise InvalidInputError(f"pipeline {self.name!r}: call build(corpus) before search")
        if len(queries) == 0:
            raise InvalidInputError(f"pipeline {self.name!r}: no queries to search")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InvalidInputError(f"pipeline {self.name!r}: k must be a positive integer, got {k!r}")
        self.check_inputs(None, queries)
        n_docs = len(self.corpus)
        k = min(int(k), n_docs)  # no ranking is deeper than the corpus
        first_depth = self.cascade[0].depth if self.cascade and self.cascade[0].depth else 0
        depth = min(max(k, first_depth), n_docs)
        check_ranking_size(len(queries), depth, f"pipeline {self.name!r}", hint="search with a smaller k")
        start = time.perf_counter()
        ranking = self._first_stage_search(queries, depth, filter, exclude)
        seconds = time.perf_counter() - start
        if isinstance(self.first_stage, ReportsTimings):
            self.timings.encode_queries_s = self.first_stage.timings.encode_queries_s
            self.timings.search_s = self.first_stage.timings.search_s
            self.timings.cache_hits = self.first_stage.timings.cache_hits
        else:
            self.timings.encode_queries_s, self.timings.search_s = 0.0, seconds
        self.timings.rerank_stages = {}
        for stage in self.cascade:
            start = time.perf_counter()
            ranking = stage.apply(ranking, queries, self.corpus)
            self.timings.rerank_stages[stage.label] = time.perf_counter() - start
        self.timings.rerank_s = sum(self.timings.rerank_stages.values())
        self.timings.n_queries = len(queries)
        return ranking.truncate(int(k)) if ranking.k > k else ranking

    def _first_stage_search(self, queries: Queries, k: int, filter: Any, exclude: Exclusions | None) -> Ranking:
        """The first stage's top k; with exclusions, a retriever that cannot drop them itself is
        searched deeper by the largest exclusion count and the excluded documents removed."""
        if not exclude:
            return self.first_stage.search(queries, k, filter=filter)
        if isinstance(self.first_stage, EmbeddingRetriever):
            return self.first_stage.search(queries, k, filter=filter, exclude=exclude)
        assert self.corpus is not None
        extra = max(len(exclude.get(q, ())) for q in queries.ids.tolist())
        deeper = self.first_stage.search(queries, min(k + extra, max(len(self.corpus), k)), filter=filter)
        return deeper.without(exclude, k)

    @property
    def bytes_per_document(self) -> float:
        """Memory per indexed document of the first stage (see
        :attr:`EmbeddingRetriever.bytes_per_document`); NaN when a retriever does not say."""
        return float(getattr(self.first_stage, "bytes_per_document", float("nan")))
