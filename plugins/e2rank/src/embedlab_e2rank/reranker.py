"""``e2rank``: rerank by cosine between each candidate and the embedding of a listwise prompt."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from embedlab.cache import EmbeddingCache
from embedlab.components import NOT_IDENTITY, Component
from embedlab.dataset import Corpus, Queries, Split
from embedlab.embeddings import as_dense
from embedlab.persistence import load_state, save_state
from embedlab.ranking import Ranking
from embedlab.rerank import dense_encoder, document_positions, encode_cached, encoder_params, query_texts, reorder
from embedlab.threads import torch_threads
from embedlab.training import TrainingData
from embedlab_e2rank.lists import training_lists
from embedlab_e2rank.order import by_first_stage_score, unit
from embedlab_e2rank.prompt import DEFAULT_INSTRUCTION, listwise_prompt
from embedlab_e2rank.training import train_adapter

_v = attrs.validators
_int = [_v.instance_of(int), _v.not_(_v.instance_of(bool), msg="must be an integer, not a bool")]
_positive = [*_int, _v.ge(1)]
_number = _v.instance_of((int, float))


class E2Rank(Component):
    """E2Rank (Liu et al., 2025): the query and the first stage's top ``prompt_docs`` documents form
    a listwise prompt (pseudo-relevance feedback); the top ``k`` candidates are reordered by cosine
    between their document embeddings and the prompt's embedding, both from ``encoder``.

    Training-free with any dense encoder. :meth:`fit` optionally trains a query-side linear
    adapter with the paper's InfoNCE + RankNet objective (see :mod:`embedlab_e2rank.training`).
    ``query_weight`` w mixes in the plain query: ``(1 - w) cos(prompt, d) + w cos(query, d)``
    (0: the paper). Inside a pipeline with an embedding cache, document embeddings come from the
    whole-corpus cache entry the first stage writes (same encoder fingerprint: a hit).
    """

    kind = "reranker"
    name = "e2rank"

    @attrs.frozen(kw_only=True)
    class Config:
        """Reranking: ``encoder`` (+ ``encoder_params``), ``k``, ``prompt_docs``, ``doc_words``,
        ``instruction``, ``query_first``, ``query_weight``, ``keep_tail``. Training: ``train_adapter``
        (train in a pipeline given a training split), ``epochs``,
        ``lr``, ``batch_size``, ``list_size``, ``temperature``, ``ranknet_temperature``,
        ``ranknet_weight``, ``validation_fraction``, ``patience``, ``tol``, ``seed``."""

        encoder: str = attrs.field(default="minilm", validator=_v.instance_of(str))
        encoder_params: dict = attrs.field(factory=dict, converter=encoder_params)
        k: int = attrs.field(default=100, validator=_positive)
        prompt_docs: int = attrs.field(default=5, validator=_positive)
        doc_words: int | None = attrs.field(default=40, validator=_v.optional(_positive))
        instruction: str = attrs.field(default=DEFAULT_INSTRUCTION, validator=_v.instance_of(str))
        query_first: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        query_weight: float = attrs.field(default=0.0, validator=[_number, _v.ge(0), _v.le(1)])
        keep_tail: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        train_adapter: bool = attrs.field(default=False, validator=_v.instance_of(bool))
        epochs: int = attrs.field(default=100, validator=_positive)
        lr: float = attrs.field(default=1e-3, validator=[_number, _v.gt(0)])
        batch_size: int = attrs.field(default=64, validator=_positive)
        list_size: int = attrs.field(default=16, validator=[*_int, _v.ge(2)])
        temperature: float = attrs.field(default=0.03, validator=[_number, _v.gt(0)])
        ranknet_temperature: float = attrs.field(default=0.1, validator=[_number, _v.gt(0)])
        ranknet_weight: float = attrs.field(default=2.0, validator=[_number, _v.ge(0)])
        validation_fraction: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        patience: int = attrs.field(default=3, validator=_positive)
        tol: float = attrs.field(default=1e-4, validator=[_number, _v.ge(0)])
        seed: int = attrs.field(default=0, validator=_int)
        num_threads: int | None = attrs.field(default=None, validator=_v.optional(_positive),
                                              metadata=NOT_IDENTITY)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.encoder = dense_encoder(self.name, self.config.encoder, self.config.encoder_params)
        self.adapter: np.ndarray | None = None
        self.history: dict[str, list[float]] = {}
        self._disk_cache: EmbeddingCache | None = None
        self._corpus_hash = ""
        self._corpus_vectors: np.ndarray | None = None
        self._vectors: dict[int, np.ndarray] = {}

    def use_cache(self, cache: EmbeddingCache) -> None:
        """Take document embeddings from (and store them in) the pipeline's on-disk cache."""
        self._disk_cache = cache

    @property
    def disk_cache(self) -> EmbeddingCache | None:
        """The embedding cache given by :meth:`use_cache`, if any."""
        return self._disk_cache

    # -- reranking ---------------------------------------------------------------------------------

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        if len(ranking) == 0 or ranking.k == 0:
            return ranking
        ranking = by_first_stage_score(ranking)
        k = min(self.config.k, ranking.k)
        depth = max(k, min(self.config.prompt_docs, ranking.k))
        positions = document_positions(ranking.doc_ids[:, :depth], corpus, self.name)
        texts = query_texts(ranking, queries, self.name)
        prompt = self.encode_prompts(texts, positions[:, :self.config.prompt_docs], corpus)
        documents = self.document_vectors(positions[:, :k], corpus)
        scores = np.einsum("qd,qkd->qk", prompt, documents)
        if self.config.query_weight > 0:
            plain = encode_cached(self.encoder, "queries", texts, self._disk_cache)
            plain = self.adapt(as_dense(plain, name=f"{self.name} queries"))
            scores = ((1 - self.config.query_weight) * scores
                      + self.config.query_weight * np.einsum("qd,qkd->qk", plain, documents))
        return reorder(ranking, np.where(positions[:, :k] >= 0, scores, -np.inf),
                       keep_tail=self.config.keep_tail)

    def prompts(self, texts: list[str], positions: np.ndarray, corpus: Corpus) -> list[str]:
        """The listwise prompt of every query from its first documents' corpus positions (-1: none)."""
        documents = corpus.documents()
        c = self.config
        return [listwise_prompt(query, [documents[p] for p in row if p >= 0], instruction=c.instruction,
                                doc_words=c.doc_words, query_first=c.query_first)
                for query, row in zip(texts, positions.tolist())]

    def encode_prompts(self, texts: list[str], positions: np.ndarray, corpus: Corpus) -> np.ndarray:
        """Unit-norm embeddings of the prompts, through the adapter once fitted. Encoded on every
        call, never cached: they depend on the first stage's result, and encoding them is the
        reranker's online cost."""
        vectors = self.encoder.encode_queries(self.prompts(texts, positions, corpus))
        return self.adapt(as_dense(vectors, name=f"{self.name} prompts"))

    def adapt(self, vectors: np.ndarray) -> np.ndarray:
        """Query-side embeddings through the trained adapter (identity before :meth:`fit`)."""
        return unit(vectors if self.adapter is None else vectors @ self.adapter.T)

    def document_vectors(self, positions: np.ndarray, corpus: Corpus) -> np.ndarray:
        """Unit-norm document embeddings at these corpus positions (shape ``positions.shape + (d,)``,
        zeros for -1). With a disk cache: the whole-corpus entry (as the pipeline's first stage keys
        it); without: only the documents not embedded before by this instance are encoded."""
        if corpus.content_hash != self._corpus_hash:
            self._corpus_hash, self._corpus_vectors, self._vectors = corpus.content_hash, None, {}
        flat = positions.ravel()
        if self._disk_cache is not None:
            if self._corpus_vectors is None:
                key = self._disk_cache.key(self.encoder, "documents", corpus.content_hash)
                entry = self._disk_cache.get_or_compute(
                    key, lambda: self.encoder.encode_documents(corpus.documents()))
                self._corpus_vectors = unit(as_dense(entry.embeddings, name=f"{self.name} documents"))
            table, index = self._corpus_vectors, flat
        else:
            missing = sorted({int(p) for p in flat if p >= 0} - set(self._vectors))
            if missing:
                documents = corpus.documents()
                encoded = self.encoder.encode_documents([documents[p] for p in missing])
                self._vectors.update(zip(missing, unit(as_dense(encoded, name=f"{self.name} documents"))))
            unique = sorted({int(p) for p in flat if p >= 0})
            table = np.stack([self._vectors[p] for p in unique]) if unique else np.zeros((1, 1), np.float32)
            index = np.where(flat >= 0, np.searchsorted(np.asarray(unique, dtype=np.int64), flat), -1)
        rows = np.where((index >= 0)[:, None], table[np.maximum(index, 0)], np.float32(0))
        return rows.reshape(*positions.shape, table.shape[1])

    # -- training ----------------------------------------------------------------------------------

    def fit(self, ranking: Ranking, split: Split, corpus: Corpus) -> E2Rank:
        """Train the query-side adapter on ``split`` (its queries and qrels) with the paper's
        InfoNCE + RankNet loss; ``ranking`` is the first stage's result for those queries (hard
        negatives and prompt documents). Starts from the identity each time; Ctrl-C keeps the
        previous adapter."""
        with torch_threads(self.config.num_threads):
            lists = training_lists(self, ranking, split, corpus)
            weight, history = train_adapter(lists, self.config, desc=f"{self.name} adapter")
        self.adapter, self.history = weight.numpy().astype(np.float32), history
        return self

    def fit_queries(self, data: TrainingData) -> E2Rank:
        """Pipeline training (``[dataset] train_split`` in an experiment file): with
        ``train_adapter`` the adapter trains on the first stage's ranking of the training queries;
        without it the reranker stays training-free, as the paper's zero-shot use."""
        if self.config.train_adapter:
            self.fit(data.first_stage, data.split, data.corpus)
        return self

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        arrays = {} if self.adapter is None else {"adapter": self.adapter}
        save_state(path, self, arrays=arrays, meta={"history": self.history})

    @classmethod
    def load(cls, path: str | Path) -> E2Rank:
        state = load_state(path, kind=cls.kind, name=cls.name)
        reranker = state.build(cls)
        if "adapter" in state.arrays:
            dim = reranker.encoder.dim
            reranker.adapter = np.array(state.array("adapter", kinds="f", shape=(dim, dim), finite=True), np.float32)
        reranker.history = state.series("history")
        return reranker
