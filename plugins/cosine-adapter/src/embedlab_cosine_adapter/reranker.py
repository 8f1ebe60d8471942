"""``cosine-adapter``: calibrate the first stage's cosines into relevance probabilities per query
and cut every result list at one global probability threshold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.components import NOT_IDENTITY, Component
from embedlab.dataset import Corpus, Dataset, Queries, Split
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab.ranking import Ranking
from embedlab.rerank import dense_encoder, document_positions, encode_cached, encoder_params, query_texts
from embedlab.threads import torch_threads
from embedlab_cosine_adapter.cutoffs import choose_threshold, cut, judge
from embedlab_cosine_adapter.mapping import FAMILIES, WEIGHT_NAMES, logits, outputs
from embedlab_cosine_adapter.training import TrainingData, train

_v = attrs.validators
_int = [_v.instance_of(int), _v.not_(_v.instance_of(bool), msg="must be an integer, not a bool")]
_positive = [*_int, _v.ge(1)]
_number = _v.instance_of((int, float))
_probability = [_number, _v.gt(0), _v.lt(1)]
#: Slack on the cosine range [-1, 1] for float rounding of unit vectors.
COSINE_SLACK = 1e-3


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


class CosineAdapter(Component):
    """Cosine Adapter (Rossi et al., CIKM 2024; formula reconstructed, see :mod:`.mapping`).

    Scores of the input ranking must be the first stage's raw cosines (a dense encoder with an
    ``ip``/``cosine`` index), sorted descending. The output keeps that order, replaces each score by
    ``p(rel | q, d)`` and removes (``""`` / ``-inf``) every document with ``p < threshold``; the
    threshold is the one :meth:`fit` chose unless ``threshold`` is set. The query embeddings come
    from ``encoder`` (default ``minilm``; the first stage's encoder should be the same).
    """

    kind = "reranker"
    name = "cosine-adapter"

    @attrs.frozen(kw_only=True)
    class Config:
        """Serving: ``encoder`` (+ ``encoder_params``), ``threshold`` (None: the fitted one).
        Training (a pipeline with a training split calls :meth:`fit_queries`): ``family``,
        ``hidden``, ``target_recall`` (None: max mean set F1), ``candidates``,
        ``rel``, ``epochs``, ``lr``, ``weight_decay``, ``batch_size``, ``validation_fraction``,
        ``patience``, ``tol``, ``seed``."""

        encoder: str = attrs.field(default="minilm", validator=_v.instance_of(str))
        encoder_params: dict = attrs.field(factory=dict, converter=encoder_params)
        threshold: float | None = attrs.field(default=None, validator=_v.optional(_probability))
        family: str = attrs.field(default="linear", validator=_v.in_(FAMILIES))
        hidden: int = attrs.field(default=64, validator=_positive)
        target_recall: float | None = attrs.field(default=None,
                                                  validator=_v.optional([_number, _v.gt(0), _v.le(1)]))
        candidates: int = attrs.field(default=100, validator=_positive)
        rel: int = attrs.field(default=1, validator=_positive)
        epochs: int = attrs.field(default=200, validator=_positive)
        lr: float = attrs.field(default=3e-3, validator=[_number, _v.gt(0)])
        weight_decay: float = attrs.field(default=1e-4, validator=[_number, _v.ge(0)])
        batch_size: int = attrs.field(default=64, validator=_positive)
        validation_fraction: float = attrs.field(default=0.2, validator=[_number, _v.ge(0), _v.lt(1)])
        patience: int = attrs.field(default=10, validator=_positive)
        tol: float = attrs.field(default=1e-4, validator=[_number, _v.ge(0)])
        seed: int = attrs.field(default=0, validator=_int)
        num_threads: int | None = attrs.field(default=None, validator=_v.optional(_positive),
                                              metadata=NOT_IDENTITY)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.encoder = dense_encoder(self.name, self.config.encoder, self.config.encoder_params)
        self.weights: dict[str, np.ndarray] | None = None
        self.cosine_mean = self.cosine_std = float("nan")
        self.fitted_threshold = float("nan")
        self.history: dict[str, list[float]] = {}
        self._cache: EmbeddingCache | None = None

    def use_cache(self, cache: EmbeddingCache) -> None:
        """Encode queries (and, in :meth:`fit`, the corpus) through the pipeline's on-disk cache."""
        self._cache = cache

    @property
    def threshold(self) -> float:
        """The global probability threshold in use: ``config.threshold`` or the fitted one."""
        return self.config.threshold if self.config.threshold is not None else self.fitted_threshold

    # -- serving -----------------------------------------------------------------------------------

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        """Calibrate and cut ``ranking`` (the adapter must be fitted or loaded)."""
        document_positions(ranking.doc_ids, corpus, self.name)
        return self.filter(ranking, self.query_embeddings(ranking, queries))

    def query_embeddings(self, ranking: Ranking, queries: Queries) -> np.ndarray:
        """Embeddings of the ranked queries from ``encoder`` (through the cache when one is set)."""
        return self._encode_queries(query_texts(ranking, queries, self.name))

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return as_dense(encode_cached(self.encoder, "queries", texts, self._cache), name=f"{self.name} queries")

    def filter(self, ranking: Ranking, query_embeddings: np.ndarray) -> Ranking:
        """Scores replaced by probabilities, documents below the threshold removed, order kept."""
        probabilities = self.probabilities(ranking, query_embeddings)
        return cut(Ranking(ranking.query_ids, ranking.doc_ids, probabilities), probabilities >= self.threshold)

    def probabilities(self, ranking: Ranking, query_embeddings: np.ndarray) -> np.ndarray:
        """``(n, k)`` calibrated ``p(rel | q, d)`` of every ranked document (``-inf`` at padding);
        ``query_embeddings`` has one row per ranked query, in ranking order."""
        if self.weights is None:
            raise NotFittedError(f"{self.name}: call fit(...) (or load a fitted state) before reranking")
        cosines, valid = self._cosines(ranking)
        queries = self._queries(query_embeddings, len(ranking))
        weights = {k: torch.from_numpy(v) for k, v in self.weights.items()}
        with torch.no_grad(), torch_threads(self.config.num_threads):
            h = logits(weights, self.config.family, torch.from_numpy(queries),
                       torch.from_numpy(cosines), self.cosine_mean, self.cosine_std)
            probabilities = torch.sigmoid(h).numpy()
        return np.where(valid, probabilities, -np.inf)

    def _cosines(self, ranking: Ranking) -> tuple[np.ndarray, np.ndarray]:
        """Finite cosines (0 at padding) and the non-padding mask, after checking they are cosines."""
        valid = ranking.doc_ids != ""
        scores = ranking.scores
        if valid.any():
            bad = ~np.isfinite(scores[valid]) | (np.abs(scores[valid]) > 1 + COSINE_SLACK)
            if bad.any():
                raise InvalidInputError(
                    f"{self.name}: ranking scores must be raw cosines in [-1, 1], got e.g. "
                    f"{scores[valid][bad][0]!r}; put the adapter right after a dense first stage with "
                    "an 'ip' or 'cosine' index over unit-norm embeddings")
        filled = np.where(valid, scores, -np.inf)
        if (np.diff(filled, axis=1) > 0).any():
            raise InvalidInputError(f"{self.name}: ranking rows are not sorted by descending score; the "
                                    "adapter maps the first stage's ranking and must directly follow it")
        return np.where(valid, scores, 0.0), valid

    @staticmethod
    def _queries(query_embeddings: np.ndarray, n: int) -> np.ndarray:
        queries = as_dense(query_embeddings, name="cosine-adapter query embeddings")
        if queries.shape[0] != n:
            raise InvalidInputError(f"cosine-adapter: {queries.shape[0]} query embeddings for a ranking "
                                    f"of {n} queries; give one per ranked query, in ranking order")
        return _unit(queries)

    # -- training ----------------------------------------------------------------------------------

    def fit_queries(self, data: embedlab.TrainingData) -> CosineAdapter:
        """Pipeline training (``[dataset] train_split`` in an experiment file): fit on the first
        stage's ranking of the training queries and their qrels."""
        return self.fit(data.split, data.first_stage, corpus=data.corpus)

    def fit(self, data: Dataset | Split, ranking: Ranking | None = None, *, split: str = "train",
            corpus: Corpus | None = None, query_embeddings: np.ndarray | None = None) -> CosineAdapter:
        """Train on the qrels of a split: ``data`` is a :class:`Dataset` (its split ``split`` is
        used) or a :class:`Split` (then pass ``corpus``, unless ``ranking`` is given).

        ``ranking``: the first stage's cosine top-K for the split's queries; by default the exact
        top ``candidates`` of ``encoder`` over the corpus. ``query_embeddings`` (one per ranking
        row) skip re-encoding. The network is trained on part of the queries; the threshold is
        chosen on the held-out part (``target_recall`` None: best mean set F1). The component
        changes only when training completes (Ctrl-C leaves it as it was).
        """
        part, corpus = self._resolve(data, split, corpus)
        if ranking is None:
            if corpus is None:
                raise InvalidInputError(f"{self.name}: fit on a Split needs corpus=... or a first-stage ranking")
            ranking = self.first_stage(part.queries, corpus)
        elif corpus is not None:
            document_positions(ranking.doc_ids, corpus, self.name)
        judged = np.array([q in part.qrels for q in ranking.query_ids.tolist()], dtype=bool)
        if not judged.any():
            raise InvalidInputError(f"{self.name}: none of the {len(ranking)} ranked queries has qrels in "
                                    f"split {part.name!r}; rank that split's queries")
        if query_embeddings is not None:
            query_embeddings = self._queries(query_embeddings, len(ranking))[judged]
        ranking = Ranking(ranking.query_ids[judged], ranking.doc_ids[judged], ranking.scores[judged])
        if query_embeddings is None:
            query_embeddings = self.query_embeddings(ranking, part.queries)
        queries = self._queries(query_embeddings, len(ranking))
        cosines, valid = self._cosines(ranking)
        judgments = judge(ranking, part.qrels, self.config.rel)
        positives = int(judgments.labels.sum())
        if positives == 0:
            raise InvalidInputError(f"{self.name}: no relevant document (grade >= {self.config.rel}) among "
                                    f"the {int(valid.sum())} candidates of split {part.name!r}; retrieve "
                                    "deeper (candidates=...) or use a split whose qrels match the corpus")
        unit = np.clip((cosines[valid] + 1.0) / 2.0, 1e-6, 1.0)
        mean, std = float(unit.mean()), float(max(unit.std(), 1e-6))
        data_ = TrainingData(torch.from_numpy(queries), torch.from_numpy(cosines),
                             torch.from_numpy(judgments.labels.astype(np.float64)), torch.from_numpy(valid))
        with torch_threads(self.config.num_threads):
            result = train(data_, self.config, mean, std, positives / int(valid.sum()), desc=self.name)
            weights = {k: torch.from_numpy(v) for k, v in result.weights.items()}
            held = torch.from_numpy(result.held_out)
            with torch.no_grad():
                h = logits(weights, self.config.family, data_.queries[held], data_.cosines[held], mean, std)
                probabilities = np.where(valid[result.held_out], torch.sigmoid(h).numpy(), -np.inf)
        held_judgments = attrs.evolve(judgments, labels=judgments.labels[result.held_out],
                                      n_relevant=judgments.n_relevant[result.held_out])
        threshold = choose_threshold(probabilities, held_judgments, self.config.target_recall)
        self.weights, self.history = result.weights, result.history
        self.cosine_mean, self.cosine_std, self.fitted_threshold = mean, std, threshold
        return self

    def _resolve(self, data: Dataset | Split, split: str, corpus: Corpus | None) -> tuple[Split, Corpus | None]:
        if isinstance(data, Dataset):
            return data.split(split), data.corpus if corpus is None else corpus
        if not isinstance(data, Split):
            raise InvalidInputError(f"{self.name}: fit takes a Dataset or a Split, got {type(data).__name__}")
        if not any(g >= self.config.rel for judged in data.qrels.values() for g in judged.values()):
            raise InvalidInputError(f"{self.name}: split {data.name!r} has no qrels with grade >= "
                                    f"{self.config.rel}; the adapter learns from relevance judgments, "
                                    "so train on a judged split such as 'train'")
        return data, corpus

    def first_stage(self, queries: Queries, corpus: Corpus) -> Ranking:
        """Exact cosine top ``candidates`` of ``encoder`` (corpus embeddings through the cache,
        under the key a pipeline's first stage uses)."""
        documents = self.encoder.encode_documents
        if self._cache is None:
            vectors = documents(corpus.documents())
        else:
            key = self._cache.key(self.encoder, "documents", corpus.content_hash)
            vectors = self._cache.get_or_compute(key, lambda: documents(corpus.documents())).embeddings
        index = embedlab.create("index", "exact", metric="cosine")
        index.build(vectors)
        found = index.search(self._encode_queries(list(queries.texts)), min(self.config.candidates, len(corpus)))
        return Ranking.from_search(queries.ids, found, corpus.ids)

    # -- persistence -------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        if self.weights is None:
            raise NotFittedError(f"{self.name}: nothing to save before fit(...)")
        meta = {"cosine_mean": self.cosine_mean, "cosine_std": self.cosine_std,
                "fitted_threshold": self.fitted_threshold, "history": self.history}
        save_state(path, self, arrays=self.weights, meta=meta)

    @classmethod
    def load(cls, path: str | Path) -> CosineAdapter:
        state = load_state(path, kind=cls.kind, name=cls.name)
        adapter = state.build(cls)
        hidden, n_out = adapter.config.hidden, outputs(adapter.config.family)
        w1 = state.array("w1", kinds="f", shape=(hidden, None), finite=True)
        shapes = {"w1": w1.shape, "b1": (hidden,), "w2": (n_out, hidden), "b2": (n_out,)}
        adapter.weights = {k: np.array(state.array(k, kinds="f", shape=shapes[k], finite=True), dtype=np.float64)
                           for k in WEIGHT_NAMES}
        adapter.cosine_mean = float(state.value("cosine_mean", (int, float)))
        adapter.cosine_std = float(state.value("cosine_std", (int, float), minimum=0))
        adapter.fitted_threshold = float(state.value("fitted_threshold", (int, float), finite=False))
        adapter.history = state.series("history")
        return adapter
