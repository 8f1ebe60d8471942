"""Long documents as passages: a first stage that encodes and indexes passages and ranks documents.

:class:`PassageRetriever` (retriever ``passages``; in a ``[[pipeline]]`` table, ``passages = {...}``
next to ``encoder``) cuts each document into passages (:mod:`embedlab.segmentation`), encodes and
indexes them with any encoder, compressor and index through an ordinary
:class:`~embedlab.retrievers.EmbeddingRetriever` (so passage vectors are cached like any encoding,
and large corpora are encoded in resumable chunks), and scores a document from its passages'
scores (``aggregate``):

* ``maxp``: its best passage (Dai & Callan's MaxP). The passage index is searched deeper until
  ``k`` distinct documents are found, so with an exact index the document ranking is exact;
* ``firstp``: its first passage (FirstP): only first passages are indexed;
* ``mean`` / ``sum``: the mean / the sum of its ``top_k`` best passages (all when ``top_k`` is
  None: SumP). Candidates are the best ``candidates`` documents by MaxP (None: every document);
  all passages of each candidate are then scored exactly against the encoder's vectors with the
  index's metric (``ip``, ``cosine`` or ``l2``);
* ``maxsim``: each document is one multi-vector item made of its passage vectors, searched by the
  index's MaxSim (exact index) or any multi-vector index (muvera). For single-vector queries it
  equals ``maxp`` with an exact index.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab import embeddings as emb
from embedlab.components import Component, fingerprint
from embedlab.dataset import Corpus, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.filters import resolve_filter
from embedlab.index.maxsim import maxsim_scores
from embedlab.protocols import GraphEncoder, LearnsFromQueries, Tokenizes
from embedlab.ranking import MISSING_SCORE, Ranking, SearchResult
from embedlab.retrievers import ComponentSpec, EmbeddingRetriever, create_component
from embedlab.segmentation import UNITS, Passages, Segmentation, positive_or_none, segment
from embedlab.timings import Timings

AGGREGATES = ("maxp", "firstp", "mean", "sum", "maxsim")
#: Passage metrics the exact re-scoring of ``mean``/``sum`` understands (the index's ``metric``).
METRICS = ("ip", "cosine", "l2")


@attrs.frozen
class PassageConfig:
    """Segmentation (``by``, ``size``, ``overlap``, ``title``; see
    :class:`~embedlab.segmentation.Segmentation`) and how passage scores make a document score."""

    by: str = attrs.field(default="tokens", validator=attrs.validators.in_(UNITS))
    size: int | None = attrs.field(default=None, validator=positive_or_none)
    overlap: int = 0
    title: bool = True
    aggregate: str = attrs.field(default="maxp", validator=attrs.validators.in_(AGGREGATES))
    #: ``sum``: add the best ``top_k`` passages of a document (None: all of them).
    top_k: int | None = attrs.field(default=None, validator=positive_or_none)
    #: ``mean``/``sum``: documents (the best by MaxP) whose passages are all scored; None: all.
    candidates: int | None = attrs.field(default=1000, validator=positive_or_none)

    def __attrs_post_init__(self) -> None:
        self.segmentation()
        if self.top_k is not None and self.aggregate != "sum":
            raise ValueError(f"top_k applies to aggregate 'sum', not {self.aggregate!r}")

    def segmentation(self) -> Segmentation:
        return Segmentation(by=self.by, size=self.size, overlap=self.overlap, title=self.title)


class PassageRetriever(Component):
    """Documents ranked by their passages' scores (see the module docstring).

    >>> retriever = PassageRetriever(encoder="minilm", by="tokens", size=128, overlap=32)  # doctest: +SKIP
    >>> pipeline = embedlab.Pipeline(retriever=retriever)                                 # doctest: +SKIP
    """

    kind = "retriever"
    name = "passages"
    Config = PassageConfig

    def __init__(self, config: PassageConfig | None = None, /, *, encoder: ComponentSpec = None,
                 index: ComponentSpec = "exact", compressor: ComponentSpec = None, label: str = "passages",
                 options: Mapping[str, Any] | None = None, **params: Any) -> None:
        super().__init__(config, **params)
        if encoder is None:
            raise ConfigError("passages: needs an encoder (e.g. encoder = \"minilm\")")
        self.label = label
        # options: EmbeddingRetriever settings (fit_sample, seed, chunk_size, executor, progress)
        self.inner = EmbeddingRetriever(create_component("encoder", encoder),
                                        create_component("index", index or "exact"),
                                        create_component("compressor", compressor), label=label,
                                        **dict(options or {}))
        if self.config.aggregate == "maxsim" and self.inner.compressor is not None:
            raise ConfigError("passages: aggregate 'maxsim' indexes multi-vector documents; a compressor "
                              "needs dense vectors (use aggregate 'maxp' to compress passage vectors)")
        self.timings = Timings()
        self.passages: Passages | None = None
        self.corpus: Corpus | None = None

    @property
    def encoder(self) -> Any:
        return self.inner.encoder

    @property
    def index(self) -> Any:
        return self.inner.index

    def parts(self) -> dict[str, Any]:
        return self.inner.parts()

    def fingerprints(self) -> dict[str, str]:
        return {"retriever": fingerprint(self), **self.inner.fingerprints()}

    def use_cache(self, cache: Any) -> None:
        self.inner.use_cache(cache)

    # -- build --------------------------------------------------------------------------------

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Segment ``corpus``, encode and index its passages (first passages for ``firstp``)."""
        encoder = self.inner.encoder
        if isinstance(encoder, GraphEncoder):
            raise ConfigError(f"passages: encoder {encoder.name!r} embeds graph nodes, which have no passages")
        learners = [c for c in (encoder, self.inner.compressor) if isinstance(c, LearnsFromQueries)]
        if train is not None and learners:
            raise ConfigError(f"passages: {learners[0].name!r} learns from judged queries, whose judgments name "
                              "documents, not passages; train it on whole documents first")
        start = time.perf_counter()
        passages = segmented(corpus, self.config.segmentation(), encoder)
        seconds = time.perf_counter() - start
        aggregate = self.config.aggregate
        keep = aggregate in ("mean", "sum")
        if aggregate == "firstp":
            indexed = passages.first()
            self.inner.build(indexed.corpus(corpus.attributes, ids=corpus.ids))
        elif aggregate == "maxsim":
            self._build_multivector(passages, corpus)
        else:
            self.inner.build(passages.corpus(corpus.attributes), keep_vectors=keep)
        self.timings = attrs.evolve(self.inner.timings)
        self.timings.encode_documents_s += seconds  # segmenting is part of encoding the documents
        self.passages, self.corpus = passages, corpus
        return self.timings

    def _build_multivector(self, passages: Passages, corpus: Corpus) -> None:
        inner = self.inner
        inner.timings = Timings()
        passage_corpus = passages.corpus()
        vectors, inner.timings.encode_documents_s = inner.encode("documents", passage_corpus.content_hash,
                                                                 list(passage_corpus.texts))
        if emb.kind_of(vectors) is not emb.EmbeddingKind.DENSE:
            raise ConfigError(f"passages: aggregate 'maxsim' needs a dense encoder; {inner.encoder.name!r} "
                              f"gives {emb.kind_of(vectors).value} vectors")
        start = time.perf_counter()
        inner.index.build(emb.MultiVectorEmbeddings(vectors, passages.offsets), corpus.attributes or None)
        inner.timings.index_s = time.perf_counter() - start
        inner.corpus = corpus

    # -- search -------------------------------------------------------------------------------

    def search(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        """The top ``k`` documents of every query by the aggregate of their passages' scores."""
        passages, corpus = self._built()
        inner = self.inner
        vectors, encode_s = inner.encode("queries", queries.content_hash, list(queries.texts))
        start = time.perf_counter()
        mask = resolve_filter(filter, corpus.attributes, len(corpus), len(queries))
        aggregate = self.config.aggregate
        if aggregate in ("firstp", "maxsim"):
            if aggregate == "maxsim":
                vectors = _as_multivector(vectors)
            ranking = Ranking.from_search(queries.ids, inner.index.search(vectors, k, filter=mask), corpus.ids)
        else:
            depth = k if aggregate == "maxp" else (self.config.candidates or len(corpus))
            positions, scores = self._maxp(vectors, min(depth, len(corpus)), _passage_mask(mask, passages))
            if aggregate != "maxp":
                positions, scores = self._rescore(vectors, positions, k)
            ranking = _ranking(queries.ids, corpus.ids, positions, scores, k)
        self.timings = attrs.evolve(self.timings, encode_queries_s=encode_s, search_s=time.perf_counter() - start)
        return ranking

    def search_passages(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        """The top ``k`` passages (ids ``<document id>#<j>``, see :attr:`Passages.ids`)."""
        passages, corpus = self._built()
        if self.config.aggregate in ("firstp", "maxsim"):
            raise ConfigError(f"passages: aggregate {self.config.aggregate!r} does not index every passage "
                              "as its own item; use 'maxp', 'mean' or 'sum'")
        vectors, _ = self.inner.encode("queries", queries.content_hash, list(queries.texts))
        mask = _passage_mask(resolve_filter(filter, corpus.attributes, len(corpus), len(queries)), passages)
        return Ranking.from_search(queries.ids, self.inner.index.search(vectors, k, filter=mask), passages.ids)

    def _built(self) -> tuple[Passages, Corpus]:
        if self.passages is None or self.corpus is None:
            raise InvalidInputError(f"first stage {self.label!r}: call build(corpus) before search")
        return self.passages, self.corpus

    def _maxp(self, vectors: emb.Embeddings, k: int, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(n_queries, k)`` document positions and MaxP scores: passages are searched deeper
        (doubling) until each query has ``k`` distinct documents or every passage was seen."""
        passages = self.passages
        assert passages is not None
        n_queries, total = emb.count(vectors), len(passages)
        positions = np.full((n_queries, k), -1, dtype=np.int64)
        scores = np.full((n_queries, k), MISSING_SCORE, dtype=np.float64)
        todo = np.arange(n_queries)
        depth = min(total, k * max(1, int(np.ceil(total / len(passages.doc_ids)))))
        while todo.size:
            rows_mask = mask if mask is None or mask.ndim == 1 else mask[todo]
            result = self.inner.index.search(emb.take(vectors, todo), depth, filter=rows_mask)
            unfinished = []
            for row, query in enumerate(todo.tolist()):
                docs, best = _first_per_document(result, row, passages.document)
                if docs.size >= k or depth >= total or np.count_nonzero(result.indices[row] >= 0) < depth:
                    positions[query, :min(k, docs.size)] = docs[:k]
                    scores[query, :min(k, docs.size)] = best[:k]
                else:
                    unfinished.append(query)
            todo = np.asarray(unfinished, dtype=np.int64)
            depth = min(total, depth * 2)
        return positions, scores

    def _rescore(self, vectors: emb.Embeddings, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Score every passage of each candidate document and aggregate them (``mean``/``sum``)."""
        passages = self.passages
        assert passages is not None
        passage_vectors = self.inner.document_vectors
        assert passage_vectors is not None
        metric = str(getattr(getattr(self.inner.index, "config", None), "metric", "ip"))
        if metric not in METRICS:
            raise ConfigError(f"passages: aggregate {self.config.aggregate!r} re-scores passages exactly and "
                              f"knows the metrics {', '.join(METRICS)}; the index uses {metric!r}")
        width = min(k, candidates.shape[1])
        positions = np.full((len(candidates), width), -1, dtype=np.int64)
        scores = np.full((len(candidates), width), MISSING_SCORE, dtype=np.float64)
        offsets = passages.offsets
        for row in range(len(candidates)):
            docs = candidates[row][candidates[row] >= 0]
            if not docs.size:
                continue
            counts = offsets[docs + 1] - offsets[docs]
            rows = np.repeat(offsets[docs] - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts) \
                + np.arange(counts.sum())
            values = passage_scores(emb.take(vectors, np.array([row])), emb.take(passage_vectors, rows), metric)
            doc_scores = aggregate_scores(values, np.concatenate([[0], np.cumsum(counts)]),
                                          self.config.aggregate, self.config.top_k)
            order = np.lexsort((docs, -doc_scores))[:width]
            positions[row, :order.size], scores[row, :order.size] = docs[order], doc_scores[order]
        return positions, scores

    @property
    def bytes_per_document(self) -> float:
        """Index memory per document (all of its passages)."""
        n = len(self.corpus) if self.corpus is not None else 0
        return self.inner.index.memory_bytes / max(n, 1)


#: Segmentations kept in this process (several pipelines of an experiment cut the same corpus alike).
_SEGMENTED: OrderedDict[tuple[str, Segmentation, str], Passages] = OrderedDict()
_KEEP_SEGMENTED = 4


def segmented(corpus: Corpus, segmentation: Segmentation, encoder: Any) -> Passages:
    """:func:`~embedlab.segmentation.segment`, remembered for the last few (corpus, segmentation,
    tokenizer) triples of this process (tokenising a corpus takes seconds to minutes)."""
    key = (corpus.content_hash, segmentation, fingerprint(encoder) if isinstance(encoder, Tokenizes) else "")
    if key in _SEGMENTED:
        _SEGMENTED.move_to_end(key)
        return _SEGMENTED[key]
    passages = segment(corpus, segmentation, encoder)
    _SEGMENTED[key] = passages
    while len(_SEGMENTED) > _KEEP_SEGMENTED:
        _SEGMENTED.popitem(last=False)
    return passages


def passage_scores(query: emb.Embeddings, passages: emb.Embeddings, metric: str) -> np.ndarray:
    """Scores of one query against some passages, as an exact index with ``metric`` computes them."""
    if isinstance(query, emb.MultiVectorEmbeddings):
        return maxsim_scores(_normalised(query) if metric == "cosine" else query,
                             _normalised(passages) if metric == "cosine" else passages)[0].astype(np.float64)
    if emb.kind_of(query) is emb.EmbeddingKind.SPARSE:
        q, p = query, passages
        values = np.asarray((p @ q.T).todense()).ravel().astype(np.float64)
        if metric == "cosine":
            norms = np.sqrt(np.asarray(p.multiply(p).sum(axis=1)).ravel()) * np.sqrt(q.multiply(q).sum())
            values = values / np.maximum(norms, 1e-12)
        elif metric == "l2":
            values = 2 * values - np.asarray(p.multiply(p).sum(axis=1)).ravel() - q.multiply(q).sum()
        return values
    q, p = np.asarray(query, dtype=np.float64)[0], np.asarray(passages, dtype=np.float64)
    if metric == "l2":
        return -((p - q) ** 2).sum(axis=1)
    values = p @ q
    if metric == "cosine":
        values = values / np.maximum(np.linalg.norm(p, axis=1) * np.linalg.norm(q), 1e-12)
    return values


def aggregate_scores(scores: np.ndarray, offsets: np.ndarray, method: str, top_k: int | None = None) -> np.ndarray:
    """One score per group of passage scores (``scores[offsets[i]:offsets[i + 1]]``, none empty):
    ``maxp`` the maximum, ``firstp`` the first, ``mean`` the mean, ``sum`` the sum of the best
    ``top_k`` (all when None).

    >>> aggregate_scores(np.array([1.0, 3.0, 2.0, 5.0]), np.array([0, 3, 4]), "sum", top_k=2)
    array([5., 5.])
    """
    scores, offsets = np.asarray(scores, dtype=np.float64), np.asarray(offsets, dtype=np.int64)
    counts = np.diff(offsets)
    if (counts <= 0).any():
        raise InvalidInputError("aggregate_scores: every document needs at least one passage score")
    starts = offsets[:-1]
    if method == "maxp":
        return np.maximum.reduceat(scores, starts)
    if method == "firstp":
        return scores[starts]
    if method == "mean":
        return np.add.reduceat(scores, starts) / counts
    if method == "sum":
        if top_k is None:
            return np.add.reduceat(scores, starts)
        group = np.repeat(np.arange(counts.size), counts)
        order = np.lexsort((-scores, group))  # each group's scores, best first
        rank = np.arange(scores.size) - np.repeat(starts, counts)
        kept = np.where(rank < top_k, scores[order], 0.0)
        return np.add.reduceat(kept, starts)
    raise ConfigError(f"unknown aggregate {method!r}; choose one of maxp, firstp, mean, sum")


def _first_per_document(result: SearchResult, row: int, document: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Documents of one query's passage results in order of first appearance, with that (best) score."""
    found = result.indices[row] >= 0
    docs = document[result.indices[row][found]]
    unique, first = np.unique(docs, return_index=True)
    order = np.sort(first)
    return docs[order], result.scores[row][found][order].astype(np.float64)


def _passage_mask(mask: np.ndarray | None, passages: Passages) -> np.ndarray | None:
    """A document filter mask (one for all queries, or one per query) over the passages."""
    if mask is None:
        return None
    return mask[..., passages.document]


def _as_multivector(vectors: emb.Embeddings) -> emb.MultiVectorEmbeddings:
    if isinstance(vectors, emb.MultiVectorEmbeddings):
        return vectors
    dense = emb.as_dense(vectors, name="passages: query vectors")
    return emb.MultiVectorEmbeddings(dense, np.arange(len(dense) + 1))


def _normalised(items: emb.MultiVectorEmbeddings) -> emb.MultiVectorEmbeddings:
    norms = np.linalg.norm(items.vectors, axis=1, keepdims=True)
    return emb.MultiVectorEmbeddings(items.vectors / np.maximum(norms, 1e-12), items.offsets)


def _ranking(query_ids: np.ndarray, doc_ids: np.ndarray, positions: np.ndarray, scores: np.ndarray,
             k: int) -> Ranking:
    """Document positions and scores as a ranking of ``k`` columns (padded with ``""``/-inf)."""
    padded = np.full((len(positions), k), -1, dtype=np.int64)
    width = min(k, positions.shape[1])
    padded[:, :width] = positions[:, :width]
    result = SearchResult(np.where(padded >= 0, np.pad(scores[:, :width], ((0, 0), (0, k - width))),
                                   MISSING_SCORE), padded)
    return Ranking.from_search(query_ids, result, doc_ids)
