"""Supervised fine-tuning of the yes/no cross-encoder with embedlab-train's loop: the same seeded
batches, hard negatives per epoch, AdamW schedule, resumable checkpoints and held-out early stopping
as the bi-encoder ``finetune``, with a step that scores (query, document) pairs instead of embedding
each side, and a held-out evaluation that reranks the first stage's candidates."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
from embedlab_train import Candidates, Loss, Mined, TrainingContext, TrainingSet
from embedlab_train.loop import Trainer
from embedlab_train.validation import ndcg_at_10

from embedlab.errors import InvalidInputError
from embedlab.ranking import Ranking
from embedlab_qwen3.cross_encoder import OBJECTIVES, YesNoModel


class YesNoSFT(Loss):
    """The SFT objective of the yes/no reranker (not a bi-encoder loss: the trainer calls
    :meth:`pairs` through :class:`SFTTrainer`; it has no trainable parameters of its own)."""

    name = "yesno-sft"

    @attrs.frozen(kw_only=True)
    class Config:
        objective: str = attrs.field(default="vocabulary", validator=attrs.validators.in_(OBJECTIVES))

    def pairs(self, model: YesNoModel, queries: list[str], documents: list[str], relevant: list[bool]) -> torch.Tensor:
        return model.sft_loss(queries, documents, relevant, self.config.objective)

    def __call__(self, batch: Any) -> torch.Tensor:
        raise TypeError("yesno-sft scores (query, document) pairs; it is not a bi-encoder loss")


class GivenCandidates(Mined):
    """embedlab-train's ``mined`` sampler over candidates that are already known (the pipeline's
    first-stage ranking of the training queries) instead of mining them again."""

    def __init__(self, candidates: Candidates | None, **params: Any) -> None:
        super().__init__(**params)
        self.given = candidates

    def prepare(self, context: TrainingContext) -> None:
        if self.given is None:
            super().prepare(context)
        else:
            self._candidates = Candidates(self.given.positions[:, :self.config.depth],
                                          self.given.scores[:, :self.config.depth])


def candidates_from_ranking(ranking: Ranking, data: TrainingSet) -> Candidates:
    """A first stage's ranking of the training queries as corpus positions per query index of
    ``data`` (queries it does not rank get no candidates: random negatives fill in)."""
    row_of = {q: i for i, q in enumerate(ranking.query_ids.tolist())}
    position = data.corpus.position
    unknown = sorted({d for d in ranking.doc_ids[ranking.doc_ids != ""].tolist() if d not in position})
    if unknown:
        raise InvalidInputError(f"yesno: {len(unknown)} ranked document id(s) are not in the corpus, "
                                f"e.g. {unknown[:5]}")
    positions = np.full((len(data.queries), ranking.k), -1, dtype=np.int64)
    scores = np.full(positions.shape, -np.inf, dtype=np.float32)
    for q, qid in enumerate(data.queries.ids.tolist()):
        row = row_of.get(qid)
        if row is None:
            continue
        ids = ranking.doc_ids[row]
        positions[q] = [position.get(d, -1) if d else -1 for d in ids.tolist()]
        scores[q] = np.where(positions[q] >= 0, ranking.scores[row], -np.inf)
    return Candidates(positions, scores)


@attrs.frozen(eq=False)
class RerankValidation:
    """Held-out training queries and the first stage's top candidates of each: the model reranks
    them and the mean nDCG@10 (judged documents among the candidates) picks the best weights."""

    queries: np.ndarray
    pools: list[np.ndarray]

    @classmethod
    def build(cls, held: np.ndarray, candidates: Candidates, depth: int) -> RerankValidation | None:
        if not len(held):
            return None
        pools = [row[row >= 0] for row in candidates.positions[held, :depth]]
        return cls(np.asarray(held, dtype=np.int64), pools)

    def score(self, model: YesNoModel, data: TrainingSet, batch_size: int) -> float:
        width = max((len(p) for p in self.pools), default=0)
        if width == 0:
            return 0.0
        queries = [data.queries.texts[q] for q, pool in zip(self.queries.tolist(), self.pools) for _ in pool]
        documents = [data.documents[p] for pool in self.pools for p in pool.tolist()]
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                flat = torch.cat([model.scores(queries[s:s + batch_size], documents[s:s + batch_size])
                                  for s in range(0, len(queries), batch_size)]).double().cpu()
        finally:
            model.train(was_training)
        matrix = torch.full((len(self.pools), width), float("-inf"), dtype=torch.float64)
        relevant, start = [], 0
        for row, (q, pool) in enumerate(zip(self.queries.tolist(), self.pools)):
            matrix[row, :len(pool)] = flat[start:start + len(pool)]
            start += len(pool)
            relevant.append({i for i, p in enumerate(pool.tolist()) if p in data.judged[q]})
        return ndcg_at_10(matrix, relevant)


class SFTTrainer(Trainer):
    """embedlab-train's loop with the yes/no cross-encoder's step and held-out evaluation."""

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        data = self.context.data
        columns = [data.positive[rows], *negatives[rows].T]
        query_texts = [data.queries.texts[q] for q in data.query[rows].tolist()]
        queries = query_texts * len(columns)
        documents = [data.documents[p] for column in columns for p in column.tolist()]
        relevant = [True] * len(rows) + [False] * (len(documents) - len(rows))
        assert isinstance(self.loss, YesNoSFT)
        return self.loss.pairs(self.model, queries, documents, relevant)

    def validation_score(self) -> float:
        assert isinstance(self.validation, RerankValidation)
        return self.validation.score(self.model, self.context.data, self.settings.eval_batch_size)
