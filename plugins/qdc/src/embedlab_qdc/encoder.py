"""Query Drift Compensation (Goswami et al., CoLLAs 2025) as an embedlab encoder (``qdc``).

Continual fine-tuning without re-indexing: the document index stays as the *old* encoder built it,
the *new* encoder (fine-tuned on the new task, from the old weights) encodes the queries, and the
mean drift of the new task's training queries, ``delta = mean_q (f_new(q) - f_old(q))``, is
subtracted from every query: ``q~ = f_new(q) - delta`` (official code: one mean vector, no
re-normalisation). Chains of tasks subtract the sum of every step's drift: give a saved ``qdc``
state as ``old_state`` and its drift is carried over.

``documents = "new"`` encodes documents with the new encoder (full re-indexing, the upper bound);
``compensate = false`` scores the new queries against the old index as they are (the lower bound).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind, as_dense
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab.protocols import LearnsFromQueries
from embedlab.training import TrainingData

_v = attrs.validators
#: Files of a model directory saved with the new encoder (its weights and tokenizer).
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
               "sentence_bert_config.json", "model.safetensors")


def _spec(value: Any) -> Any:
    from embedlab_train.components import component_spec

    return component_spec(value, "encoder")


class QueryDriftCompensation(Component):
    """Old index, new queries, minus the new task's mean query drift (``LearnsFromQueries``)."""

    kind = "encoder"
    name = "qdc"

    @attrs.frozen(kw_only=True)
    class Config:
        """``old``: the encoder that built the index (name or table), or ``old_state``: a saved
        encoder state (a saved ``qdc`` chains its drift); ``new``: the encoder trained on the new
        task (default ``finetune`` from all-MiniLM-L6-v2; ``train_new = false`` uses it as given
        and only estimates the drift); ``compensate``; ``documents`` (``old``: keep the index,
        ``new``: re-index); ``normalize``: re-normalise compensated queries (the paper does not)."""

        old: Any = attrs.field(default="minilm", converter=_spec)
        old_state: str | None = attrs.field(default=None, converter=attrs.converters.optional(str))
        new: Any = attrs.field(default="finetune", converter=_spec)
        train_new: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        compensate: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        documents: str = attrs.field(default="old", validator=_v.in_(("old", "new")))
        normalize: bool = attrs.field(default=False, validator=_v.instance_of(bool))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        import embedlab
        from embedlab.pipeline import create_component

        self.old = embedlab.load_component(self.config.old_state) if self.config.old_state else \
            create_component("encoder", self.config.old)
        self.new = create_component("encoder", self.config.new)
        for role, encoder in (("old", self.old), ("new", self.new)):
            if encoder.output_kind != EmbeddingKind.DENSE:
                raise ConfigError(f"qdc: the {role} encoder gives {encoder.output_kind.value} embeddings; "
                                  "query drift compensation needs dense vectors")
        self.drift: np.ndarray | None = None

    # -- identity ---------------------------------------------------------------------------

    @property
    def state_fingerprint(self) -> str | None:
        """The new encoder's trained state and the drift (None before fitting)."""
        if self.drift is None:
            return None
        import hashlib

        digest = hashlib.sha256(np.ascontiguousarray(self.total_drift, dtype=np.float32).tobytes())
        digest.update(str(getattr(self.new, "state_fingerprint", None)).encode())
        return digest.hexdigest()

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return int(self.new.dim)

    @property
    def previous_drift(self) -> np.ndarray | None:
        """The drift already compensated by ``old_state`` (a chained ``qdc``), if any."""
        return self.old.total_drift if isinstance(self.old, QueryDriftCompensation) else None

    @property
    def total_drift(self) -> np.ndarray:
        """Every step's drift: what is subtracted from the new encoder's queries."""
        if self.drift is None:
            raise NotFittedError("qdc: fit_queries (a training split of the new task) before encoding queries")
        previous = self.previous_drift
        return self.drift if previous is None else self.drift + previous

    # -- encoding ---------------------------------------------------------------------------

    def old_queries(self, texts: list[str]) -> np.ndarray:
        """The old model's own query vectors (uncompensated, for a chained ``qdc`` too)."""
        old = self.old.new if isinstance(self.old, QueryDriftCompensation) else self.old
        return as_dense(old.encode_queries(texts), name="qdc old queries")

    def encode_documents(self, texts: list[str]) -> np.ndarray:
        encoder = self.old if self.config.documents == "old" else self.new
        return as_dense(encoder.encode_documents(texts), name="qdc documents")

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        queries = as_dense(self.new.encode_queries(texts), name="qdc queries")
        if self.config.compensate and self.config.documents == "old":
            queries = (queries - self.total_drift).astype(np.float32)
            if self.config.normalize:
                queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        return queries

    # -- training ---------------------------------------------------------------------------

    def fit_queries(self, data: TrainingData) -> QueryDriftCompensation:
        """Train the new encoder on the new task's split (unless ``train_new`` is off), then estimate
        the drift on that split's queries."""
        if self.config.train_new and isinstance(self.new, LearnsFromQueries):
            self.new.fit_queries(data)
        self.estimate_drift(list(data.split.queries.texts))
        return self

    def estimate_drift(self, texts: list[str]) -> np.ndarray:
        """``mean(f_new(q) - f_old(q))`` over ``texts`` (the new task's training queries)."""
        if not texts:
            raise InvalidInputError("qdc: no queries to estimate the drift on")
        new = as_dense(self.new.encode_queries(texts), name="qdc new queries")
        old = self.old_queries(texts)
        if new.shape[1] != old.shape[1]:
            raise InvalidInputError(f"qdc: the new encoder gives {new.shape[1]} dimensions, the old one "
                                    f"{old.shape[1]}; the old index cannot be searched with the new queries")
        self.drift = (new.astype(np.float64) - old).mean(axis=0).astype(np.float32)
        return self.drift

    # -- persistence ------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Config, drift and the new encoder's model files (weights included), in one state
        directory that is also the new encoder's model directory (a chained ``old_state`` stays
        where it is: the config names it)."""
        if self.drift is None:
            raise NotFittedError("qdc: nothing to save before fit_queries")
        model_dir = getattr(self.new, "model_dir", None)
        if model_dir is None or not (Path(model_dir) / "model.safetensors").is_file():
            raise ConfigError("qdc saves the new encoder's model directory: use a transformers-family encoder "
                              "(finetune, transformers) with single-file safetensors weights")
        files = {name: (Path(model_dir) / name).read_bytes() for name in MODEL_FILES
                 if (Path(model_dir) / name).is_file()}
        save_state(path, self, arrays={"drift": self.drift}, files=files)

    @classmethod
    def load(cls, path: str | Path) -> QueryDriftCompensation:
        """Read an encoder written by :meth:`save`: the new encoder from the state's own model
        files (checked against their sha256), the drift checked against its dimension."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        new = state.config.get("new", "finetune")
        new = dict(new) if isinstance(new, dict) else {"name": new}
        if not isinstance(new.get("name"), str):
            raise state.error("config.new names no encoder")
        new["model_path"] = str(Path(path).resolve())
        if new["name"] == "finetune":
            new["checkpoint_dir"] = None
        encoder = state.build(cls, new=new, train_new=False)
        drift = state.array("drift", kinds="f", shape=(encoder.new.dim,), finite=True)
        encoder.drift = np.array(drift, dtype=np.float32)
        return encoder
