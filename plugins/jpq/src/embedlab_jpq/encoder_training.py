"""JPQ's joint training of the query *encoder* and the PQ centroids with embedlab-train's loop.

The paper trains the query encoder (its Transformer weights) together with the PQ centroids, the
document side staying fixed: documents keep the codes they were assigned once, and each step
searches the *current* index with the current query embeddings for its negatives. Here the
encoder is a Hugging Face model trained by embedlab-train's :class:`~embedlab_train.loop.Trainer`
(AdamW, linear warm-up and decay, gradient clipping, resumable checkpoints, held-out early
stopping); :class:`JPQTrainer` replaces the bi-encoder step (it embeds queries only) and the
held-out evaluation (nDCG@10 of held-out training queries on the live index), and
:class:`JPQRankingLoss` holds the index, whose centroids are a trainable parameter of the loss at
their own learning rate (``Loss.learning_rates``). Importing this module needs embedlab-train.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_train import Loss
from embedlab_train.loop import Trainer
from embedlab_train.losses import positive_number
from embedlab_train.validation import encode

from embedlab_jpq.loss import live_index_loss
from embedlab_jpq.torch_pq import FloatDocuments, FrozenPQ
from embedlab_jpq.training import ndcg_at_10

_v = attrs.validators


class JPQRankingLoss(Loss):
    """JPQ's pairwise ranking loss against a live index that the loss holds: queries (embedded by
    the encoder being trained) are rotated by the fixed OPQ rotation and scored against ``documents``
    (:class:`FrozenPQ`: the codes, whose centroids train at ``centroid_lr`` unless it is None;
    :class:`FloatDocuments`: the float control, nothing of the loss trains). Not a bi-encoder loss:
    :class:`JPQTrainer` calls :meth:`queries_loss`."""

    name = "jpq-ranking"

    @attrs.frozen(kw_only=True)
    class Config:
        """``top_k``: live-index negatives per query; ``lambda_cut``: rank weights are 0 beyond it
        (0: no cut); ``temperature``: scores are divided by it (see :mod:`embedlab_jpq.loss`)."""

        top_k: int = attrs.field(default=200, validator=[_v.instance_of(int), _v.ge(1)])
        lambda_cut: int = attrs.field(default=10, validator=[_v.instance_of(int), _v.ge(0)])
        temperature: float = attrs.field(default=0.05, validator=positive_number)

    def __init__(self, documents: FrozenPQ | FloatDocuments, rotation: np.ndarray | None,
                 centroid_lr: float | None, **params: Any) -> None:
        super().__init__(**params)
        self.documents = documents
        self.rotation = None if rotation is None else torch.from_numpy(np.array(rotation, dtype=np.float32))
        self.centroid_lr = centroid_lr if isinstance(documents, FrozenPQ) else None
        if self.centroid_lr is None and isinstance(documents, FrozenPQ):
            documents.centroids.requires_grad_(False)

    def parameters(self) -> dict[str, torch.Tensor]:
        return {} if self.centroid_lr is None else {"centroids": self.documents.centroids}

    def learning_rates(self) -> dict[str, float]:
        return {} if self.centroid_lr is None else {"centroids": self.centroid_lr}

    def rotate(self, queries: torch.Tensor) -> torch.Tensor:
        """Query embeddings in the codes' space (``R q``)."""
        return queries if self.rotation is None else queries @ self.rotation.T

    def queries_loss(self, queries: torch.Tensor, relevant: Sequence[Sequence[int]]) -> torch.Tensor:
        """The loss of ``(b, d)`` query embeddings whose relevant corpus positions are ``relevant``."""
        config = self.config
        return live_index_loss(self.documents, self.rotate(queries), relevant, config.top_k, config.lambda_cut,
                               config.temperature)

    def search(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        """``(b, k)`` corpus positions of the best documents of the current index."""
        return self.documents.search(self.rotate(queries), k)

    def __call__(self, batch: Any) -> torch.Tensor:
        raise TypeError("jpq-ranking scores queries against its own index: train it with JPQTrainer")


class JPQTrainer(Trainer):
    """embedlab-train's loop with JPQ's step (queries embedded, documents fixed in the loss's index)
    and held-out evaluation (nDCG@10 of the held-out training queries on the live index, the whole
    corpus ranked)."""

    loss: JPQRankingLoss

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        data = self.context.data
        queries = data.query[rows].tolist()
        embedded = self.model.embed([data.queries.texts[q] for q in queries])
        return self.loss.queries_loss(embedded, [sorted(data.judged[q]) for q in queries])

    def validation_score(self) -> float:
        assert self.validation is not None
        data, held = self.context.data, self.validation.queries.tolist()
        was_training = self.model.training
        self.model.eval()
        try:
            queries = encode(self.model, [data.queries.texts[q] for q in held], self.settings.eval_batch_size)
            with torch.no_grad():
                ranked = self.loss.search(queries, 10)
        finally:
            self.model.train(was_training)
        return ndcg_at_10(ranked.cpu().numpy(), [sorted(data.judged[q]) for q in held])
