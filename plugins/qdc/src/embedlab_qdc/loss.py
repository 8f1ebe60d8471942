"""QDC's optional embedding distillation during continual fine-tuning (``qdc-kd``): InfoNCE plus
``lambda_q (1 - cos(f_t(q), f_{t-1}(q))) + lambda_d (1 - cos(f_t(d), f_{t-1}(d)))`` for the batch's
queries and documents, ``f_{t-1}`` the frozen previous model (official code: cosine embedding loss
with target 1, both weights 1). The previous model's vectors of the training queries and the corpus
are computed once (through the embedding cache). Zero weights give ``infonce``."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
from embedlab_train import Batch, InfoNCE, TrainingContext
from embedlab_train.components import component_spec

from embedlab.embeddings import EmbeddingKind
from embedlab.errors import ConfigError

_v = attrs.validators
_weight = [_v.instance_of((int, float)), _v.not_(_v.instance_of(bool)), _v.ge(0)]


class DriftDistillation(InfoNCE):
    """InfoNCE plus cosine distillation of queries and documents towards the previous model."""

    name = "qdc-kd"

    @attrs.frozen(kw_only=True)
    class Config(InfoNCE.Config):
        """``previous``: the encoder before this task (name or table, default zero-shot ``minilm``);
        ``query_weight`` (lambda_q), ``document_weight`` (lambda_d)."""

        previous: Any = attrs.field(default="minilm", converter=lambda v: component_spec(v, "previous"))
        query_weight: float = attrs.field(default=1.0, validator=_weight)
        document_weight: float = attrs.field(default=1.0, validator=_weight)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._queries: torch.Tensor | None = None
        self._documents: torch.Tensor | None = None

    def prepare(self, context: TrainingContext) -> None:
        from embedlab.pipeline import create_component

        if not (self.config.query_weight or self.config.document_weight):
            return
        previous = create_component("encoder", self.config.previous)
        if previous.output_kind != EmbeddingKind.DENSE:
            raise ConfigError(f"qdc-kd: previous encoder {self.config.previous!r} is not dense")
        self.use_previous_vectors(context.encode(previous, "queries"), context.encode(previous, "documents"))

    def use_previous_vectors(self, queries: np.ndarray, documents: np.ndarray) -> None:
        """The previous model's vectors: one row per training query and per corpus document."""
        self._queries = torch.from_numpy(np.asarray(queries, dtype=np.float64))
        self._documents = torch.from_numpy(np.asarray(documents, dtype=np.float64))

    def distillation(self, batch: Batch) -> torch.Tensor:
        """``lambda_q mean(1 - cos(q, q_prev)) + lambda_d mean(1 - cos(d, d_prev))`` over the batch."""
        if self._queries is None or self._documents is None:
            raise RuntimeError("qdc-kd: prepare() (or use_previous_vectors()) before computing the loss")
        device = batch.queries.device
        q_prev = self._queries[torch.from_numpy(batch.data.query[batch.rows])].to(device, batch.queries.dtype)
        d_prev = self._documents[torch.from_numpy(batch.doc_positions)].to(device, batch.documents.dtype)
        cos = torch.nn.functional.cosine_similarity
        return (self.config.query_weight * (1 - cos(batch.queries, q_prev, dim=1)).mean()
                + self.config.document_weight * (1 - cos(batch.documents, d_prev, dim=1)).mean())

    def __call__(self, batch: Batch) -> torch.Tensor:
        loss = super().__call__(batch)
        if self.config.query_weight or self.config.document_weight:
            loss = loss + self.distillation(batch)
        return loss
