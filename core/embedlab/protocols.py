"""The component protocols. Plugins implement them; the core only talks to them.

Every component also carries ``name`` (its registered name) and ``config`` (an attrs instance):
see :class:`embedlab.components.Component`, a convenient base class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from embedlab.dataset import Corpus, Qrels, Queries, Split
from embedlab.embeddings import EmbeddingKind, Embeddings
from embedlab.graph.graph import Graph
from embedlab.ranking import Ranking, SearchResult
from embedlab.timings import Timings
from embedlab.training import TrainingData

#: A filter is a boolean mask over corpus positions, or a predicate taking the attribute
#: columns (``{name: array}``) and returning such a mask.
Filter = Any


@runtime_checkable
class Encoder(Protocol):
    """Turns texts into embeddings; queries and documents may be encoded differently.

    >>> enc = embedlab.create("encoder", "minilm")           # doctest: +SKIP
    >>> enc.encode_queries(["what is bm25?"]).shape           # doctest: +SKIP
    (1, 384)
    """

    name: str
    config: Any

    @property
    def output_kind(self) -> EmbeddingKind: ...

    @property
    def dim(self) -> int:
        """Dimension of dense/multi-vector/binary outputs, vocabulary size for sparse ones."""

    def encode_queries(self, texts: Sequence[str]) -> Embeddings: ...

    def encode_documents(self, texts: Sequence[str]) -> Embeddings: ...


@runtime_checkable
class GraphEncoder(Protocol):
    """Optional capability of an encoder that embeds the nodes of a graph (FastRP, node2vec...).

    The pipeline fits it on the corpus's graph (a :class:`embedlab.graph.NodeCorpus`: the training
    graph, held-out edges removed) instead of on document texts; afterwards ``encode_documents`` and
    ``encode_queries`` take node ids. See :class:`embedlab.graph.NodeEncoder` for a base class.
    """

    def fit_graph(self, graph: Graph) -> Any: ...


@runtime_checkable
class Tokenizes(Protocol):
    """Optional encoder capability: its own tokenizer, so documents can be cut into passages of a
    number of *its* tokens (:mod:`embedlab.segmentation`) and lengths over its limit be counted.
    Plugin API 1.1."""

    @property
    def max_tokens(self) -> int:
        """Tokens of a document's own text that one input holds (the limit less special tokens
        and any document prefix)."""

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, the ``(n_tokens, 2)`` int64 character spans ``[start, end)`` of its tokens,
        without special tokens and without truncation."""


@runtime_checkable
class Trainable(Protocol):
    """A component that must be fitted explicitly before use (never silently on the batch)."""

    def fit(self, *args: Any, **kwargs: Any) -> Any: ...


@runtime_checkable
class LearnsFromQueries(Protocol):
    """Optional capability of an encoder, compressor or reranker trained on judged queries.

    When the pipeline is given a training split, it calls ``fit_queries`` instead of the stage's
    plain fit (an encoder's ``fit(documents)``, a compressor's ``fit(sample)``); a reranker is
    trained after the index is built. See :class:`embedlab.training.TrainingData`.
    """

    def fit_queries(self, data: TrainingData) -> Any: ...


@runtime_checkable
class Compressor(Protocol):
    """Fits on sample vectors, then maps float32 vectors to compact codes and back."""

    name: str
    config: Any

    def fit(self, vectors: np.ndarray) -> Compressor: ...

    def encode(self, vectors: np.ndarray) -> np.ndarray: ...

    def decode(self, codes: np.ndarray) -> np.ndarray: ...

    @property
    def bytes_per_vector(self) -> float: ...

    def save(self, path: str | Path) -> None: ...


@runtime_checkable
class CodeScorer(Protocol):
    """Optional compressor capability: score float queries against codes without decoding them."""

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(n_queries, n_codes)`` similarity (higher is better)."""


@runtime_checkable
class FitsFromChunks(Protocol):
    """Optional compressor capability: fit on the rows ``positions`` of a chunk store of dense
    vectors (:class:`embedlab.shards.ChunkStore`) reading only what it needs (PQ: one group of
    subspace columns at a time), instead of on the whole sample in memory. The pipeline uses it
    when it builds from chunks; the result equals ``fit(chunks.take(positions))``."""

    def fit_from_chunks(self, chunks: Any, positions: np.ndarray) -> Any: ...


@runtime_checkable
class PreparedCodeScorer(Protocol):
    """Optional compressor capability beside :class:`CodeScorer`: prepare a batch of queries once
    (PQ lookup tables) and score many blocks of codes with it. The exact index then scans one
    query batch at a time, holding that batch's tables only."""

    def query_scorer(self, queries: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """A function ``codes -> (n_codes, n_queries)`` similarities (documents-major), equal to
        ``score(queries, codes).T``."""


@runtime_checkable
class Index(Protocol):
    """Stores document embeddings and answers top-k queries, optionally under a filter."""

    name: str
    config: Any

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these documents (positions 0..n-1)."""

    def add(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents after the existing ones."""

    def search(self, queries: Embeddings, k: int, filter: Filter = None) -> SearchResult: ...

    def __len__(self) -> int: ...

    @property
    def memory_bytes(self) -> int:
        """Bytes the index holds in memory."""

    def save(self, path: str | Path) -> None: ...


@runtime_checkable
class AcceptsCompressor(Protocol):
    """Optional index capability: store codes from a fitted compressor instead of float vectors.

    A pipeline with a compressor calls ``use_compressor`` before ``build``; an index without this
    capability is built on ``compressor.decode(compressor.encode(vectors))`` instead.
    """

    def use_compressor(self, compressor: Compressor) -> None: ...


@runtime_checkable
class BuildsFromChunks(Protocol):
    """Optional index capability: build from an :class:`embedlab.shards.ChunkStore`, reading one
    chunk at a time, so that the vectors are never all in memory next to what the index keeps.

    The pipeline uses it for corpora encoded in chunks; the result must equal
    ``build(chunks.gather(), attributes)``.
    """

    def build_from_chunks(self, chunks: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None: ...


@runtime_checkable
class Retriever(Protocol):
    """A first stage that returns a ranking: built on a corpus, then searched with query texts.

    An encoder + optional compressor + index is one (:class:`embedlab.retrievers.EmbeddingRetriever`);
    a fusion of retrievers is another (:class:`embedlab.fusion.FusionRetriever`); a plugin may
    register its own under the kind ``retriever`` (BM25 in a search engine, generative retrieval
    mapping text to document ids, graph node retrieval). ``train`` is a judged split the retriever
    may learn from (never the evaluated one). Plugin API 1.1.
    """

    name: str
    config: Any

    def build(self, corpus: Corpus, train: Split | None = None) -> Any:
        """Index ``corpus`` (replacing earlier contents), fitting what learns on it or on ``train``."""

    def search(self, queries: Queries, k: int, filter: Filter = None) -> Ranking:
        """The top ``k`` documents of ``corpus`` for every query, as document ids."""


@runtime_checkable
class ReportsTimings(Protocol):
    """Optional retriever capability: seconds per stage of its last build/search (otherwise the
    pipeline times ``build`` as indexing and ``search`` as search)."""

    timings: Timings


@runtime_checkable
class Reranker(Protocol):
    """Reorders (and may rescore) each query's candidates: ranking in, ranking out."""

    name: str
    config: Any

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking: ...


@runtime_checkable
class UsesEmbeddingCache(Protocol):
    """Optional capability of components that encode on their own (a late-interaction reranker):
    the pipeline hands them its :class:`embedlab.cache.EmbeddingCache` so reruns skip encoding."""

    def use_cache(self, cache: Any) -> None: ...


@runtime_checkable
class Metric(Protocol):
    """An evaluation measure such as ``nDCG@10``; ``str(metric)`` parses back to an equal metric."""

    def per_query(self, ranking: Ranking, qrels: Qrels) -> dict[str, float]:
        """Value for every query in ``qrels`` (queries missing from the ranking score 0)."""

    def aggregate(self, values: Mapping[str, float]) -> float:
        """Combine per-query values (a mean for every built-in measure)."""
