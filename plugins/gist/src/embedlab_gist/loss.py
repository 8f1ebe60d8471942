"""GISTEmbed's guided in-batch negative selection as an embedlab-train loss.

For query ``i`` with positive ``p_i``, the guide's similarity ``t_i = g(q_i, p_i)`` is the threshold:
every in-batch candidate ``j`` the guide scores above it (absolute margin: ``g(i, j) > t_i - margin``;
relative: ``g(i, j) > t_i - |t_i| * margin``) is treated as a false negative and removed from the
softmax; the positive never is. Candidates are the batch's documents (positives and hard negatives)
and, with ``contrast_anchors`` / ``contrast_positives``, the other queries and the other positives
(GISTEmbed's q-q and p-p blocks, diagonals removed). Logits are cosine / temperature.

The guide is any installed encoder (its vectors of the training queries and the whole corpus are
computed once in :meth:`GIST.prepare`, through the embedding cache) or any installed reranker
(scores of a batch's query-document pairs, memoised for the whole run; it guides the q-d block, so
``contrast_anchors`` and ``contrast_positives`` must be off).
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
import numpy as np
import torch
from embedlab_train import Batch, InfoNCE, TrainingContext, cosine
from embedlab_train.components import component_spec
from embedlab_train.losses import positive_number
from embedlab_train.teacher import RerankerScores

from embedlab.errors import ConfigError

_v = attrs.validators


def _guide_spec(value: Any) -> dict[str, Any]:
    spec = component_spec(value, "guide")
    spec = {"name": spec} if isinstance(spec, str) else spec
    kind = spec.pop("kind", "encoder")
    if kind not in ("encoder", "reranker"):
        raise ValueError(f"guide kind must be 'encoder' or 'reranker', got {kind!r}")
    return {"kind": kind, **spec}


class GIST(InfoNCE):
    """GISTEmbed (Solatorio, 2024): InfoNCE whose in-batch negatives that a guide model scores above
    the positive are masked out. Equal to sentence-transformers' ``GISTEmbedLoss``; with a margin
    that masks nothing and both contrast blocks off it is ``infonce``."""

    name = "gist"

    @attrs.frozen(kw_only=True)
    class Config(InfoNCE.Config):
        """``guide``: an installed encoder (name or table) or reranker (``{kind = "reranker",
        name = ...}``); ``margin_strategy``: ``absolute`` or ``relative``; ``margin``;
        ``contrast_anchors`` / ``contrast_positives``: add the q-q and p-p blocks; ``temperature``
        (GISTEmbed's 0.01 by default); ``mask_judged`` as ``infonce``."""

        temperature: float = attrs.field(default=0.01, validator=positive_number)
        guide: Mapping[str, Any] = attrs.field(default="minilm", converter=_guide_spec)
        margin_strategy: str = attrs.field(default="absolute", validator=_v.in_(("absolute", "relative")))
        margin: float = attrs.field(default=0.0, validator=_v.instance_of((int, float)))
        contrast_anchors: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        contrast_positives: bool = attrs.field(default=True, validator=_v.instance_of(bool))

        def __attrs_post_init__(self) -> None:
            if self.guide["kind"] == "reranker" and (self.contrast_anchors or self.contrast_positives):
                raise ValueError("a reranker guide scores query-document pairs only: set contrast_anchors = false "
                                 "and contrast_positives = false")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._queries: torch.Tensor | None = None  # guide vectors of the training queries
        self._documents: torch.Tensor | None = None  # guide vectors of the corpus
        self._context: TrainingContext | None = None
        self.guide = self._build_guide()
        self._pairs = RerankerScores(self.guide)  # reranker guide scores, memoised

    def _build_guide(self) -> Any:
        from embedlab.pipeline import create_component

        spec = dict(self.config.guide)
        kind = spec.pop("kind")
        guide = create_component(kind, spec)
        if kind == "encoder" and getattr(guide.output_kind, "value", "dense") != "dense":
            raise ConfigError(f"gist: guide encoder {spec['name']!r} gives {guide.output_kind.value} embeddings; "
                              "GIST needs a dense guide")
        return guide

    def prepare(self, context: TrainingContext) -> None:
        self._context = context
        if self.config.guide["kind"] != "encoder":
            return
        self.use_guide_vectors(context.encode(self.guide, "queries"), context.encode(self.guide, "documents"))

    def use_guide_vectors(self, queries: np.ndarray, documents: np.ndarray) -> None:
        """Set the guide's vectors directly: one row per training query and per corpus document."""
        self._queries = torch.from_numpy(np.asarray(queries, dtype=np.float64))
        self._documents = torch.from_numpy(np.asarray(documents, dtype=np.float64))

    # -- guide similarities -----------------------------------------------------------------

    def guide_scores(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The guide's ``qd`` (B, C), ``qq`` and ``pp`` (B, B) similarities and ``threshold`` (B,)."""
        b = batch.size
        query_rows = batch.data.query[batch.rows]
        if self.config.guide["kind"] == "reranker":
            out = {"qd": self._pairs.scores(batch.data, query_rows, batch.doc_positions)}
        else:
            if self._queries is None or self._documents is None:
                raise RuntimeError("gist: prepare() (or use_guide_vectors()) before computing the loss")
            q = self._queries[torch.from_numpy(query_rows)]
            d = self._documents[torch.from_numpy(batch.doc_positions)]
            out = {"qd": cosine(q, d), "qq": cosine(q, q), "pp": cosine(d[:b], d[:b])}
        out["threshold"] = out["qd"].diagonal()[:b]
        return {k: v.to(batch.queries.device) for k, v in out.items()}

    def false_negatives(self, guide: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        """Where the guide scores a candidate above the query's threshold (GIST's selection rule)."""
        t = threshold.unsqueeze(1)
        if self.config.margin_strategy == "absolute":
            return guide > t - self.config.margin
        return guide > t - t.abs() * self.config.margin

    # -- loss -----------------------------------------------------------------------------

    def logits(self, batch: Batch) -> torch.Tensor:
        guide = self.guide_scores(batch)
        b, rows = batch.size, torch.arange(batch.size, device=batch.queries.device)
        qd = super().logits(batch)  # cosine / temperature, judged documents masked
        mask = self.false_negatives(guide["qd"], guide["threshold"])
        mask[rows, rows] = False  # never the positive
        blocks = [qd.masked_fill(mask, float("-inf"))]
        if self.config.contrast_anchors:
            qq = cosine(batch.queries, batch.queries) / self.temperature()
            qq = qq.masked_fill(self.false_negatives(guide["qq"], guide["threshold"]), float("-inf"))
            blocks.append(qq.masked_fill(torch.eye(b, dtype=torch.bool, device=qq.device), float("-inf")))
        if self.config.contrast_positives:
            positives = batch.documents[:b]
            pp = cosine(positives, positives) / self.temperature()
            pp = pp.masked_fill(self.false_negatives(guide["pp"], guide["threshold"]), float("-inf"))
            blocks.append(pp.masked_fill(torch.eye(b, dtype=torch.bool, device=pp.device), float("-inf")))
        return torch.cat(blocks, dim=1)

    def masked_fraction(self, batch: Batch) -> np.ndarray:
        """``(B, C)`` booleans: which query-document candidates the guide masks (diagnostics)."""
        guide = self.guide_scores(batch)
        mask = self.false_negatives(guide["qd"], guide["threshold"])
        mask[torch.arange(batch.size), torch.arange(batch.size)] = False
        return mask.cpu().numpy()
