"""``dime``: rerank the first stage's candidates with a query-aware dimension mask."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab.cache import EmbeddingCache
from embedlab.components import NOT_IDENTITY, Component
from embedlab.dataset import Corpus, Qrels, Queries, Split
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab.ranking import Ranking
from embedlab.rerank import dense_encoder, document_positions, encode_cached, encoder_params, query_texts, reorder
from embedlab.threads import torch_threads
from embedlab.training import TrainingData
from embedlab_dime.importance import masked_scores, oracle_importance, prf_importance, top_mask
from embedlab_dime.predictor import WEIGHTS, predict, train_predictor

_v = attrs.validators
_int = [_v.instance_of(int), _v.not_(_v.instance_of(bool), msg="must be an integer, not a bool")]
_positive = [*_int, _v.ge(1)]
_number = [_v.instance_of((int, float)), _v.not_(_v.instance_of(bool), msg="must be a number, not a bool")]
ESTIMATORS = ("prf", "oracle", "learned", "global")
#: The weight array of the ``"global"`` estimator: mean oracle importance over the training queries.
GLOBAL = "global_importance"


class Dime(Component):
    """DIME (Faggioli et al., SIGIR 2024): each query keeps only its ``ceil(keep_fraction * D)`` most
    important dimensions (the others are zeroed; documents are untouched) and the first stage's top
    ``depth`` candidates are rescored by inner product with that masked query.

    ``estimator`` picks the importance: ``"prf"`` (``q * mean`` of the first stage's top
    ``prf_docs`` documents), ``"oracle"`` (Pearson correlation of labels and ``q_j d_j``; needs
    :meth:`use_qrels`), ``"learned"`` (the "Learning to Select" MLP; needs :meth:`fit` or
    :meth:`load`) or ``"global"`` (the supervised control: one query-independent mask, the mean
    oracle importance of the training queries; needs :meth:`fit`). The candidates' first-stage
    order (their column order) chooses the PRF documents. With ``keep_fraction`` 1 the scores are
    the plain inner products.
    """

    kind = "reranker"
    name = "dime"

    @attrs.frozen(kw_only=True)
    class Config:
        """Reranking: ``estimator``, ``keep_fraction``, ``prf_docs``, ``depth``, ``encoder`` (+
        ``encoder_params``), ``keep_tail``. Learned predictor: ``hidden``, ``temperature``,
        ``epochs``, ``lr``, ``weight_decay``, ``batch_size``, ``validation_fraction``, ``patience``,
        ``tol``, ``seed``, ``num_threads``."""

        estimator: str = attrs.field(default="prf", validator=_v.in_(ESTIMATORS))
        keep_fraction: float = attrs.field(default=0.5, validator=[*_number, _v.gt(0), _v.le(1)])
        prf_docs: int = attrs.field(default=5, validator=_positive)
        depth: int = attrs.field(default=100, validator=_positive)
        encoder: str = attrs.field(default="minilm", validator=_v.instance_of(str))
        encoder_params: dict = attrs.field(factory=dict, converter=encoder_params)
        keep_tail: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        hidden: int = attrs.field(default=512, validator=_positive)
        temperature: float = attrs.field(default=0.05, validator=[*_number, _v.gt(0)])
        epochs: int = attrs.field(default=200, validator=_positive)
        lr: float = attrs.field(default=1e-3, validator=[*_number, _v.gt(0)])
        weight_decay: float = attrs.field(default=1e-4, validator=[*_number, _v.ge(0)])
        batch_size: int = attrs.field(default=64, validator=_positive)
        validation_fraction: float = attrs.field(default=0.2, validator=[*_number, _v.ge(0), _v.lt(1)])
        patience: int = attrs.field(default=5, validator=_positive)
        tol: float = attrs.field(default=1e-4, validator=[*_number, _v.ge(0)])
        seed: int = attrs.field(default=0, validator=_int)
        num_threads: int | None = attrs.field(default=None, validator=_v.optional(_positive),
                                              metadata=NOT_IDENTITY)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.encoder = dense_encoder(self.name, self.config.encoder, self.config.encoder_params)
        self.weights: dict[str, np.ndarray] | None = None
        self.history: dict[str, list[float]] = {}
        self.qrels: Qrels | None = None
        self._disk_cache: EmbeddingCache | None = None
        self._corpus_hash = ""
        self._corpus_vectors: np.ndarray | None = None

    def use_cache(self, cache: EmbeddingCache) -> None:
        """Take query and document embeddings from (and store them in) the pipeline's disk cache."""
        self._disk_cache = cache

    def use_qrels(self, qrels: Qrels) -> Dime:
        """Relevance labels for the ``"oracle"`` estimator (it peeks at them: an upper bound)."""
        if not isinstance(qrels, Mapping) or not qrels:
            raise InvalidInputError(f"{self.name}: use_qrels needs a non-empty mapping "
                                    "{query_id: {doc_id: grade}}")
        self.qrels = qrels
        return self

    # -- reranking ---------------------------------------------------------------------------------

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        if len(ranking) == 0 or ranking.k == 0:
            return ranking
        depth = min(self.config.depth, ranking.k)
        width = max(depth, min(self.config.prf_docs, ranking.k))
        positions = document_positions(ranking.doc_ids[:, :width], corpus, self.name)
        documents = self.document_vectors(positions, corpus)
        vectors = self.query_vectors(ranking, queries)
        importance = self.importance(vectors, ranking, positions, documents, corpus)
        mask = top_mask(importance, self.config.keep_fraction)
        scores = masked_scores(vectors, mask, documents[:, :depth])
        return reorder(ranking, np.where(positions[:, :depth] >= 0, scores, -np.inf),
                       keep_tail=self.config.keep_tail)

    def query_vectors(self, ranking: Ranking, queries: Queries) -> np.ndarray:
        """The encoder's embedding of every ranked query, ``(n, D)``."""
        texts = query_texts(ranking, queries, self.name)
        return as_dense(encode_cached(self.encoder, "queries", texts, self._disk_cache),
                        name=f"{self.name} queries")

    def importance(self, vectors: np.ndarray, ranking: Ranking, positions: np.ndarray, documents: np.ndarray,
                   corpus: Corpus) -> np.ndarray:
        """Per-dimension importance ``(n, D)`` of the ranked queries from the configured estimator;
        ``positions`` and ``documents`` are the first candidates' corpus positions and vectors."""
        if self.config.estimator == "prf":
            k = self.config.prf_docs
            return prf_importance(vectors, documents[:, :k], positions[:, :k] >= 0)
        if self.config.estimator == "oracle":
            if self.qrels is None:
                raise NotFittedError(f"{self.name}: the oracle estimator needs labels; call use_qrels(qrels)")
            depth = min(self.config.depth, positions.shape[1])
            return self.oracle(vectors, ranking, positions[:, :depth], self.qrels, corpus)
        if self.weights is None:
            raise NotFittedError(f"{self.name}: the {self.config.estimator} estimator is not trained; call "
                                 "fit(...) or load(...)")
        if self.config.estimator == "global":
            return np.broadcast_to(self.weights[GLOBAL], vectors.shape)
        return predict(self.weights, vectors)

    def oracle(self, vectors: np.ndarray, ranking: Ranking, positions: np.ndarray, qrels: Qrels,
               corpus: Corpus) -> np.ndarray:
        """Oracle importance of every ranked query over its judged documents and its candidates
        (unjudged candidates count as grade 0: BEIR qrels often judge relevant documents only)."""
        rows = []
        for i, query_id in enumerate(ranking.query_ids.tolist()):
            judged = qrels.get(query_id)
            if not judged:
                raise InvalidInputError(f"{self.name}: query {query_id!r} has no relevance labels; the "
                                        "oracle needs qrels for every ranked query")
            extra = [d for d in judged if d in corpus.position]
            candidates = [int(p) for p in positions[i] if p >= 0]
            docs = list(dict.fromkeys(candidates + [corpus.position[d] for d in extra]))
            labels = [judged.get(corpus.ids[p], 0) for p in docs]
            matrix = self.document_vectors(np.asarray(docs, dtype=np.int64), corpus)
            rows.append(oracle_importance(vectors[i], matrix, np.asarray(labels), self.name, query_id))
        return np.stack(rows)

    def document_vectors(self, positions: np.ndarray, corpus: Corpus) -> np.ndarray:
        """Document embeddings at these corpus positions (shape ``positions.shape + (D,)``, zeros
        for -1). With a disk cache: the whole-corpus entry the pipeline's first stage writes;
        without: the needed documents are encoded."""
        flat = positions.ravel()
        if self._disk_cache is not None:
            if self._corpus_vectors is None or corpus.content_hash != self._corpus_hash:
                key = self._disk_cache.key(self.encoder, "documents", corpus.content_hash)
                entry = self._disk_cache.get_or_compute(key, lambda: self.encoder.encode_documents(corpus.documents()))
                self._corpus_vectors = as_dense(entry.embeddings, name=f"{self.name} documents")
                self._corpus_hash = corpus.content_hash
            table, index = self._corpus_vectors, flat
        else:
            unique = np.unique(flat[flat >= 0])
            documents = corpus.documents()
            table = as_dense(encode_cached(self.encoder, "documents", [documents[p] for p in unique], None),
                             name=f"{self.name} documents") if len(unique) else np.zeros((1, self.encoder.dim),
                                                                                         np.float32)
            index = np.where(flat >= 0, np.searchsorted(unique, flat), -1)
        rows = np.where((index >= 0)[:, None], table[np.maximum(index, 0)], np.float32(0))
        return rows.reshape(*positions.shape, table.shape[1])

    # -- training ----------------------------------------------------------------------------------

    def fit(self, ranking: Ranking, split: Split, corpus: Corpus) -> Dime:
        """Train the learned predictor on ``split``: ``ranking`` is the first stage's result for its
        queries; each query's oracle importance (over its judged documents and top ``depth``
        candidates) is the target. Retrains from scratch; Ctrl-C keeps the previous predictor. The
        ``"global"`` estimator keeps the mean of those oracle importances instead."""
        if not split.qrels:
            raise InvalidInputError(f"{self.name}: split {split.name!r} has no qrels; the learned "
                                    "estimator trains on oracle importances from relevance labels")
        if len(ranking) < 2:
            raise InvalidInputError(f"{self.name}: fit needs a ranking of at least 2 queries, got {len(ranking)}")
        positions = document_positions(ranking.doc_ids[:, :min(self.config.depth, ranking.k)], corpus, self.name)
        vectors = self.query_vectors(ranking, split.queries)
        oracle = self.oracle(vectors, ranking, positions, split.qrels, corpus)
        if self.config.estimator == "global":
            self.weights, self.history = {GLOBAL: oracle.mean(axis=0).astype(np.float32)}, {}
            return self
        with torch_threads(self.config.num_threads):
            weights, history = train_predictor(vectors, oracle, self.config, desc=f"{self.name} predictor")
        self.weights, self.history = weights, history
        return self

    def fit_queries(self, data: TrainingData) -> Dime:
        """Pipeline training (``[dataset] train_split`` in an experiment file): the learned and global
        estimators train on the first stage's ranking of the training queries; the others learn nothing."""
        if self.config.estimator in ("learned", "global"):
            self.fit(data.first_stage, data.split, data.corpus)
        return self

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        save_state(path, self, arrays=self.weights or {}, meta={"history": self.history})

    @classmethod
    def load(cls, path: str | Path) -> Dime:
        state = load_state(path, kind=cls.kind, name=cls.name)
        reranker = state.build(cls)
        if GLOBAL in state.arrays:
            dim = reranker.encoder.dim
            reranker.weights = {GLOBAL: np.array(state.array(GLOBAL, kinds="f", shape=(dim,), finite=True), np.float32)}
        elif state.arrays:
            dim, hidden = reranker.encoder.dim, reranker.config.hidden
            shapes = {"w1": (hidden, dim), "b1": (hidden,), "w2": (dim, hidden), "b2": (dim,)}
            reranker.weights = {w: np.array(state.array(w, kinds="f", shape=shapes[w], finite=True), np.float32)
                                for w in WEIGHTS}
        reranker.history = state.series("history")
        return reranker
