"""What losses, negative samplers and pair filters receive before training: the training set, the
student model, the embedding cache, and first-stage rankings of the training queries (any installed
encoder + index, mined once and shared by every component that asks for the same first stage)."""

from __future__ import annotations

import json
from typing import Any, Mapping

import attrs
import numpy as np
import torch

from embedlab.cache import EmbeddingCache
from embedlab.errors import ConfigError
from embedlab.pipeline import Pipeline
from embedlab_train.data import TrainingSet

#: ``first_stage`` keys: the pipeline stages a mining first stage may have.
FIRST_STAGE_KEYS = ("encoder", "index", "compressor")


def first_stage_spec(value: Any) -> dict[str, Any]:
    """attrs converter: an encoder name (``"bm25"``), or a table with ``encoder`` and optionally
    ``index`` / ``compressor`` (each a name, a ``{name = ..., ...}`` table or a saved component
    ``{load = "<directory>"}``, e.g. a trained stage-1 index); exact index by default."""
    if isinstance(value, str):
        return {"encoder": value, "index": "exact"}
    if not isinstance(value, Mapping) or "encoder" not in value:
        raise ValueError(f"first_stage must be an encoder name or a table with 'encoder' (and optionally "
                         f"'index', 'compressor'), got {value!r}")
    unknown = sorted(set(value) - set(FIRST_STAGE_KEYS))
    if unknown:
        raise ValueError(f"first_stage: unknown key(s) {unknown}; accepted: {', '.join(FIRST_STAGE_KEYS)}")
    return {"index": "exact", **{k: (dict(v) if isinstance(v, Mapping) else v) for k, v in value.items()}}


@attrs.frozen(eq=False)
class Candidates:
    """A first stage's ranking of every query of a training set: ``positions[q]`` (corpus positions,
    best first, ``-1`` padding) and their ``scores``."""

    positions: np.ndarray
    scores: np.ndarray

    def unjudged(self, data: TrainingSet, query: int, start: int = 0) -> np.ndarray:
        """Query ``query``'s candidates from rank ``start`` on, judged positives and padding removed."""
        row = self.positions[query, start:]
        judged = data.judged[query]
        return np.asarray([p for p in row.tolist() if p >= 0 and p not in judged], dtype=np.int64)

    def rank_of(self, query: int, position: int) -> int:
        """0-based rank of ``position`` in ``query``'s candidates, or the depth when absent."""
        hits = np.flatnonzero(self.positions[query] == position)
        return int(hits[0]) if hits.size else int(self.positions.shape[1])


@attrs.define(eq=False)
class TrainingContext:
    """Shared by every component of one training run (see the module docstring)."""

    data: TrainingSet
    dim: int
    device: torch.device
    seed: int
    cache: EmbeddingCache | None = None
    #: The student (:class:`embedlab_train.model.Student`), for methods that score with it.
    model: Any = None
    show_progress: bool = False
    _rankings: dict[str, Candidates] = attrs.field(factory=dict)

    def candidates(self, first_stage: Mapping[str, Any], depth: int) -> Candidates:
        """The top ``depth`` of ``first_stage`` (see :func:`first_stage_spec`) for every query of
        :attr:`data`; mined once per first stage (deeper requests re-mine), encodings cached."""
        key = json.dumps(first_stage, sort_keys=True, default=str)
        known = self._rankings.get(key)
        if known is not None and known.positions.shape[1] >= min(depth, len(self.data.corpus)):
            return Candidates(known.positions[:, :depth], known.scores[:, :depth])
        try:
            pipeline = Pipeline.from_names(**first_stage, cache=self.cache, name="first stage")
        except TypeError as error:
            raise ConfigError(f"first_stage {dict(first_stage)}: {error}") from None
        pipeline.build(self.data.corpus)
        ranking = pipeline.search(self.data.queries, k=min(depth, len(self.data.corpus)))
        position = self.data.corpus.position
        positions = np.vectorize(lambda d: position.get(d, -1), otypes=[np.int64])(ranking.doc_ids)
        found = Candidates(positions, np.where(positions >= 0, ranking.scores, -np.inf).astype(np.float32))
        self._rankings[key] = found
        return found

    def encode(self, encoder: Any, role: str) -> np.ndarray:
        """``encoder``'s dense vectors of every training query (``role="queries"``, one row per query
        of :attr:`data`) or of the whole corpus (``"documents"``, corpus order), through the
        embedding cache when there is one: guide, teacher or previous-model vectors."""
        data = self.data
        if role == "queries":
            texts, content, method = list(data.queries.texts), data.queries.content_hash, encoder.encode_queries
        elif role == "documents":
            texts, content, method = data.documents, data.corpus.content_hash, encoder.encode_documents
        else:
            raise ValueError(f"role must be 'queries' or 'documents', got {role!r}")
        if self.cache is None:
            return np.asarray(method(texts))
        return np.asarray(self.cache.get_or_compute(self.cache.key(encoder, role, content),
                                                    lambda: method(texts)).embeddings)

    def rankings(self) -> list[Candidates]:
        """Every first-stage ranking mined so far (the validation pool adds their top candidates)."""
        return list(self._rankings.values())
