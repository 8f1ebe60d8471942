"""First stages: an encoder + optional compressor + index as a :class:`~embedlab.protocols.Retriever`,
and turning a first-stage spec (Python object, TOML table or registered name) into a retriever.

A spec is one of:

* a :class:`~embedlab.protocols.Retriever` object, used as is;
* ``{"encoder": ..., "compressor": ..., "index": ...}``: an :class:`EmbeddingRetriever` (index
  defaults to ``exact``); with ``"passages": {...}`` (segmentation and aggregate parameters) a
  :class:`~embedlab.passages.PassageRetriever` over the same parts;
* ``{"retriever": "name"}`` or ``{"retriever": {"name": ..., **params}}``: a component of kind
  ``retriever`` from the registry (a plugin's, or the core's ``fusion``).

Any spec table may carry a ``label`` naming the first stage in timings and fingerprints. Each
component in a spec is a name, a ``{"name": ..., **params}`` table, or ``{"load": "<directory>"}``:
a component saved with ``save`` (its fitted state reused, e.g. trained codebooks inside an index).
"""

from __future__ import annotations

import hashlib
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab import embeddings as emb
from embedlab.cache import EmbeddingCache, texts_hash
from embedlab.components import fingerprint
from embedlab.dataset import Corpus, Exclusions, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError, StateError
from embedlab.executors import Executor, LocalExecutor, create_executor
from embedlab.media import check_inputs
from embedlab.protocols import (
    AcceptsCompressor,
    Compressor,
    Encoder,
    FitsFromChunks,
    GraphEncoder,
    Index,
    LearnsFromQueries,
    Retriever,
    Trainable,
)
from embedlab.ranking import Ranking
from embedlab.sampling import sample_positions
from embedlab.shards import DEFAULT_CHUNK_SIZE, ChunkStore
from embedlab.timings import Timings
from embedlab.training import TrainingData

ComponentSpec = str | Mapping[str, Any] | None
#: Key of a component table that loads a saved state instead of creating a component by name.
LOAD_KEY = "load"
EMBEDDING_KEYS = ("encoder", "compressor", "index")
SPEC_KEYS = ("label", "retriever", *EMBEDDING_KEYS, "passages")


def create_component(kind: str, spec: ComponentSpec) -> Any:
    """Build a component from ``"name"`` or ``{"name": ..., **params}`` through the registry, or
    load a saved one from ``{"load": "<state directory>"}`` (:func:`load_saved_component`); an
    already-built component is returned as is."""
    from embedlab import registry

    if spec is None:
        return None
    if isinstance(spec, str):
        return registry().create(kind, spec)
    if not isinstance(spec, Mapping):
        return spec  # an already-built component
    params = dict(spec)
    if LOAD_KEY in params:
        return load_saved_component(kind, params)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError(f"{kind}: a component table needs a string 'name' (or '{LOAD_KEY}', a saved state)")
    return registry().create(kind, name, **params)


def load_saved_component(kind: str, table: Mapping[str, Any]) -> Any:
    """The component saved (``save(path)``) in the directory ``table["load"]``, which must hold a
    component of ``kind``: a fitted state reused as a stage (a trained compressor inside a saved
    index, fine-tuned weights...). An index loaded so keeps its compressor and is rebuilt on the
    pipeline's corpus by ``build``; the state's ``manifest.json`` pins every file (sha256), see
    :func:`saved_state_digest`."""
    from embedlab import load_component
    from embedlab.persistence import read_manifest

    extra = sorted(set(table) - {LOAD_KEY})
    path = table[LOAD_KEY]
    if extra or not isinstance(path, str) or not path:
        raise ConfigError(f"{kind}: a saved component is given as {{ {LOAD_KEY} = \"<state directory>\" }} "
                          f"alone, got {dict(table)!r}")
    found = read_manifest(path).get("kind")
    if found != kind:
        raise ConfigError(f"{kind}: {path} holds a saved {found!r} component, not a {kind!r}")
    return load_component(path)


def saved_state_digest(spec: Any) -> str | None:
    """sha256 over the manifests of every saved state a spec names (``{"load": ...}`` tables at
    any depth; None when there is none): what a spec's result depends on besides its text, for
    identities and cache keys."""
    from embedlab.persistence import MANIFEST, sha256_file

    found: list[str] = []

    def visit(value: Any) -> None:
        if isinstance(value, Mapping):
            if isinstance(value.get(LOAD_KEY), str):
                manifest = Path(value[LOAD_KEY]) / MANIFEST
                if not manifest.is_file():
                    raise StateError(f"{value[LOAD_KEY]}: not an embedlab state directory (no {MANIFEST})")
                found.append(sha256_file(manifest))
            for item in value.values():
                visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    visit(spec)
    return None if not found else hashlib.sha256("".join(found).encode()).hexdigest()


@attrs.define(eq=False)
class EmbeddingRetriever:
    """Encoder -> optional compressor -> index, as one first stage.

    Every step is explicit and timed: a trainable encoder (BM25) is fitted on the corpus documents
    (or, when it learns from judged queries and ``train`` is given, on that split), a compressor
    on a seeded sample of the document vectors, then the index is built. Embeddings go through the
    on-disk cache when one is set (:meth:`use_cache`). Corpora larger than ``chunk_size`` (with a
    cache) or built by a non-local ``executor`` are encoded chunk by chunk into the cache (a killed
    run resumes) and indexes that can are built one chunk at a time (see :mod:`embedlab.shards`).
    """

    kind = "retriever"
    name = "embedding"

    encoder: Encoder
    index: Index
    compressor: Compressor | None = None
    cache: EmbeddingCache | None = None
    fit_sample: int = attrs.field(default=100_000, validator=attrs.validators.gt(0))
    seed: int = 0
    label: str = "pipeline"
    chunk_size: int = attrs.field(default=DEFAULT_CHUNK_SIZE, validator=attrs.validators.gt(0))
    executor: Executor = attrs.field(default=None, converter=create_executor)
    progress: bool = True
    timings: Timings = attrs.field(factory=Timings)
    corpus: Corpus | None = attrs.field(default=None, init=False)
    #: After ``build(..., keep_vectors=True)``: the encoder's document vectors and, with a
    #: training split, its training queries' vectors (for learning rerankers); else None.
    document_vectors: emb.Embeddings | None = attrs.field(default=None, init=False)
    train_query_vectors: emb.Embeddings | None = attrs.field(default=None, init=False)
    _context: str = attrs.field(default="", init=False)

    @property
    def config(self) -> dict[str, Any]:
        return {"fit_sample": self.fit_sample, "seed": self.seed}

    def parts(self) -> dict[str, Any]:
        stages = {"encoder": self.encoder, "compressor": self.compressor, "index": self.index}
        return {stage: c for stage, c in stages.items() if c is not None}

    def fingerprints(self) -> dict[str, str]:
        return {stage: fingerprint(c) for stage, c in self.parts().items()}

    def use_cache(self, cache: EmbeddingCache | None) -> None:
        self.cache = cache

    def build(self, corpus: Corpus, train: Split | None = None, *, keep_vectors: bool = False) -> Timings:
        """Fit (where trainable), encode and index ``corpus``; ``keep_vectors`` keeps the document
        vectors (and the training queries' vectors when ``train`` is given) for later stages."""
        self.check_inputs(corpus, train.queries if train is not None else None)
        documents = corpus.inputs()
        self.timings = Timings()
        self.corpus = self.document_vectors = self.train_query_vectors = None
        learns = train is not None and isinstance(self.encoder, LearnsFromQueries)
        start = time.perf_counter()
        if isinstance(self.encoder, GraphEncoder):
            self.encoder.fit_graph(graph_of(corpus, self.encoder))
            learns = False
        elif learns:
            self.encoder.fit_queries(TrainingData(corpus, train))
        elif isinstance(self.encoder, Trainable):
            self.encoder.fit(documents)
        self.timings.fit_encoder_s = time.perf_counter() - start
        self._context = fit_context(self.encoder, corpus, train if learns else None)
        distributed = not isinstance(self.executor, LocalExecutor)
        if distributed and self.cache is None:
            with tempfile.TemporaryDirectory(prefix="embedlab-chunks-") as scratch:
                self.cache = EmbeddingCache(scratch)
                try:
                    self._build_from_chunks(self._encode_chunks(corpus.content_hash, documents), corpus, train,
                                            keep_vectors)
                finally:
                    self.cache = None
        elif self.cache is not None and (distributed or len(documents) > self.chunk_size) and (
                chunks := self._encode_chunks(corpus.content_hash, documents, optional=not distributed)) is not None:
            self._build_from_chunks(chunks, corpus, train, keep_vectors)
        else:
            encoded, self.timings.encode_documents_s = self.encode("documents", corpus.content_hash, documents)
            self._build_index(encoded, corpus, train, keep_vectors)
        self.corpus = corpus
        return self.timings

    def check_inputs(self, corpus: Corpus | None = None, queries: Queries | None = None) -> None:
        """Fail before any work when the encoder does not take the corpus's or the queries' input
        kinds (images, image + text; see :mod:`embedlab.media`)."""
        where = f"first stage {self.label!r}"
        if corpus is not None:
            check_inputs(self.encoder, "documents", corpus.input_kinds, where=where)
        if queries is not None:
            check_inputs(self.encoder, "queries", queries.input_kinds, where=where)

    def _learns_later(self, train: Split | None, keep_vectors: bool) -> bool:
        """Whether the compressor or a later stage trains on ``train``'s queries."""
        return train is not None and (keep_vectors or isinstance(self.compressor, LearnsFromQueries))

    def _build_index(self, encoded: emb.Embeddings, corpus: Corpus, train: Split | None,
                     keep_vectors: bool) -> None:
        train_queries = None  # the training queries' vectors, encoded once for every learning stage
        if train is not None and self._learns_later(train, keep_vectors):
            train_queries, _ = self.encode("queries", train.queries.content_hash, train.queries.inputs())
        vectors = encoded
        if self.compressor is not None:
            data = TrainingData(corpus, train, train_queries, encoded) if train_queries is not None else None
            vectors = self._apply_compressor(encoded, data)
        start = time.perf_counter()
        self.index.build(vectors, corpus.attributes or None)
        self.timings.index_s = time.perf_counter() - start
        if keep_vectors:
            self.document_vectors, self.train_query_vectors = encoded, train_queries

    def _build_from_chunks(self, chunks: ChunkStore, corpus: Corpus, train: Split | None,
                           keep_vectors: bool) -> None:
        """Like :meth:`_build_index` without holding every vector at once where the stages allow:
        the compressor fits on a sample read from the chunks and the index, when it can, reads the
        chunks one at a time. Learning stages get all vectors (they train on them)."""
        if self._learns_later(train, keep_vectors):
            self._build_index(chunks.gather(), corpus, train, keep_vectors)
            return
        if self.compressor is not None:
            positions = sample_positions(len(chunks), self.fit_sample, self.seed)
            if isinstance(self.compressor, FitsFromChunks):  # reads only the columns it needs
                start = time.perf_counter()
                self.compressor.fit_from_chunks(chunks, positions)
            else:
                sample = emb.as_dense(chunks.take(positions), name=f"first stage {self.label!r} compressor input")
                start = time.perf_counter()
                self.compressor.fit(sample)
                del sample
            self.timings.fit_compressor_s = time.perf_counter() - start
        start = time.perf_counter()
        self.index = self.executor.build_index(self.index, chunks, corpus.attributes or None, self.compressor)
        self.timings.index_s = time.perf_counter() - start

    def _encode_chunks(self, content_hash: str, documents: list[Any], *, optional: bool = False) -> ChunkStore | None:
        """The corpus encoded chunk by chunk into the cache (resuming a killed run). When the cache
        cannot be written (full disk, read-only) and it is ``optional``, warn and return None (the
        caller encodes in memory)."""
        assert self.cache is not None
        key = self.cache.key(self.encoder, "documents", content_hash, self._context)
        try:
            store = self.cache.chunk_store(key, len(documents), self.chunk_size)
            hit = store.complete
            self.executor.encode(self.encoder, documents, store, desc=f"{self.label}: encode documents",
                                 progress=self.progress)
        except (OSError, StateError) as error:
            if not optional:
                raise
            warnings.warn(f"embedding cache: cannot store the chunks of {self.label!r} ({error}); "
                          "carrying on uncached", stacklevel=3)
            return None
        self.timings.encode_documents_s = store.seconds()
        self.timings.cache_hits += int(hit)
        return store

    def release_vectors(self) -> None:
        """Drop the vectors kept by ``build(keep_vectors=True)``."""
        self.document_vectors = self.train_query_vectors = None

    def search(self, queries: Queries, k: int, filter: Any = None, exclude: Exclusions | None = None) -> Ranking:
        """Encode the queries and search the index: the top ``k`` documents of each; ``exclude``
        (``{query_id: doc_ids}``) removes documents from a query's ranking before its top k is taken."""
        if self.corpus is None:
            raise InvalidInputError(f"first stage {self.label!r}: call build(corpus) before search")
        self.check_inputs(queries=queries)
        vectors, self.timings.encode_queries_s = self.encode("queries", queries.content_hash, queries.inputs())
        start = time.perf_counter()
        if exclude:
            ranking = self._search_excluding(vectors, queries, k, filter, exclude)
        else:
            ranking = Ranking.from_search(queries.ids, self.index.search(vectors, k, filter=filter), self.corpus.ids)
        self.timings.search_s = time.perf_counter() - start
        return ranking

    def _search_excluding(self, vectors: emb.Embeddings, queries: Queries, k: int, filter: Any,
                          exclude: Exclusions) -> Ranking:
        """Search each query ``k`` + (its number of exclusions, rounded up to a power of two) deep,
        grouping queries of equal depth, then drop the excluded documents and keep the top k."""
        assert self.corpus is not None
        if isinstance(filter, (list, tuple)) or (isinstance(filter, np.ndarray) and filter.ndim == 2):
            raise InvalidInputError(f"first stage {self.label!r}: per-query filters cannot be combined with "
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

    def search_vectors(self, vectors: emb.Embeddings, query_ids: Any, k: int) -> Ranking:
        """Search already-encoded queries (the training queries' vectors kept by ``build``)."""
        assert self.corpus is not None
        return Ranking.from_search(query_ids, self.index.search(vectors, k), self.corpus.ids)

    def encode(self, role: str, content_hash: str, texts: list[Any]) -> tuple[emb.Embeddings, float]:
        """Vectors of ``texts`` (or image items, see :mod:`embedlab.media`) and the seconds their
        encoding took (read from the cache if set)."""
        method = self.encoder.encode_documents if role == "documents" else self.encoder.encode_queries
        if self.cache is None:
            start = time.perf_counter()
            vectors = method(texts)
            return vectors, time.perf_counter() - start
        key = self.cache.key(self.encoder, role, content_hash, self._context)
        cached = self.cache.get_or_compute(key, lambda: method(texts))
        self.timings.cache_hits += int(cached.hit)
        return cached.embeddings, cached.seconds

    def _apply_compressor(self, vectors: emb.Embeddings, train: TrainingData | None) -> emb.Embeddings:
        """Fit the compressor (on ``train`` when it learns from queries and one is given) and return
        what the index is built on."""
        assert self.compressor is not None
        dense = emb.as_dense(vectors, name=f"first stage {self.label!r} compressor input")
        if train is not None and isinstance(self.compressor, LearnsFromQueries):
            start = time.perf_counter()
            self.compressor.fit_queries(attrs.evolve(train, document_vectors=dense))
        else:
            sample = dense if len(dense) <= self.fit_sample else dense[
                sample_positions(len(dense), self.fit_sample, self.seed)]
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


def graph_of(corpus: Corpus, encoder: Encoder) -> Any:
    """The graph a graph encoder is fitted on: the node corpus's (training) graph."""
    graph = getattr(corpus, "graph", None)
    if graph is None:
        raise ConfigError(f"encoder {getattr(encoder, 'name', encoder)!r} embeds the nodes of a graph, but "
                          "the corpus is text; use a graph dataset (`embedlab datasets` lists them, e.g. "
                          "karate, blogcatalog) or a NodeCorpus")
    return graph


def fit_context(encoder: Encoder, corpus: Corpus, train: Split | None) -> str:
    """What a fitted encoder's vectors depend on besides its config: the corpus it was fitted on
    and, when trained on judged queries, that split's queries and qrels (part of the cache key)."""
    if train is not None:
        judgments = sorted(f"{q}\t{d}\t{g}" for q, docs in train.qrels.items() for d, g in docs.items())
        return f"{corpus.content_hash}|{train.queries.content_hash}|{texts_hash(judgments)}"
    if isinstance(encoder, GraphEncoder):
        return f"{corpus.content_hash}|{graph_of(corpus, encoder).content_hash}"
    return corpus.content_hash if isinstance(encoder, Trainable) else ""


def first_stage(spec: Any, *, label: str | None = None, fit_sample: int = 100_000, seed: int = 0) -> Retriever:
    """A :class:`Retriever` from a spec (see the module docstring)."""
    if isinstance(spec, Retriever):
        return spec
    if isinstance(spec, str):
        raise ConfigError(f"first stage {spec!r}: a first stage is a table with 'encoder' (and optional "
                          "'compressor', 'index') or 'retriever'; a bare string names a [[pipeline]] only "
                          "inside an experiment file")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"first stage: expected a retriever or a table, got {spec!r}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"first stage: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(SPEC_KEYS)}")
    label = spec.get("label", label)
    has_encoder, has_retriever = "encoder" in spec, "retriever" in spec
    if has_encoder == has_retriever:
        raise ConfigError(f"first stage {label or ''}: give exactly one of 'encoder' (with optional "
                          "'compressor' and 'index') or 'retriever'".replace("  ", " "))
    if has_retriever:
        if any(k in spec for k in EMBEDDING_KEYS):
            raise ConfigError("first stage: 'retriever' cannot be combined with 'compressor' or 'index'")
        if "passages" in spec:
            raise ConfigError("first stage: 'passages' belongs to an encoder first stage, not to 'retriever'")
        return create_component("retriever", spec["retriever"])
    if spec.get("passages") is not None:
        return passage_stage(spec["passages"], label=label or _spec_name(spec["encoder"]),
                             encoder=spec["encoder"], index=spec.get("index"),
                             compressor=spec.get("compressor"),
                             options={"fit_sample": fit_sample, "seed": seed})
    return EmbeddingRetriever(encoder=create_component("encoder", spec["encoder"]),
                              index=create_component("index", spec.get("index") or "exact"),
                              compressor=create_component("compressor", spec.get("compressor")),
                              fit_sample=fit_sample, seed=seed,
                              label=label or _spec_name(spec["encoder"]))


def passage_stage(passages: Any, *, label: str, encoder: ComponentSpec, index: ComponentSpec = None,
                  compressor: ComponentSpec = None, options: Mapping[str, Any] | None = None) -> Retriever:
    """A :class:`~embedlab.passages.PassageRetriever` from a ``passages`` table (its parameters)."""
    from embedlab.passages import PassageRetriever

    if not isinstance(passages, Mapping):
        raise ConfigError(f"first stage {label!r}: passages must be a table such as "
                          "{ by = \"tokens\", size = 128, overlap = 32 }, got " + repr(passages))
    return PassageRetriever(encoder=encoder, index=index or "exact", compressor=compressor, label=label,
                            options=options, **dict(passages))


def _spec_name(spec: ComponentSpec) -> str:
    return spec if isinstance(spec, str) else str(dict(spec or {}).get("name", "first-stage"))


def label_of(retriever: Any, default: str) -> str:
    """A short name for a first stage in timings and fingerprints."""
    return str(getattr(retriever, "label", None) or getattr(retriever, "name", None) or default)
