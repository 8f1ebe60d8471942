"""embedlab-embedlens: EmbedLens's token triage for multi-vector indexes. Each token vector of a
late-interaction encoder (all-MiniLM-L6-v2's token vectors by default) is probed against the
model's input-embedding matrix; *sink* and *dead* tokens (no word of their own) are dropped from
the documents, *alive* tokens kept. Controls at equal bytes: the same number of tokens dropped at
random (``policy = "random"``) or drawn from the alive tokens (``"alive"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
from embedlab_transformers.encoder import raw_token_encoder
from embedlab_transformers.model_files import import_transformers, resolve_model_dir, weight_tensor

import embedlab
from embedlab.embeddings import EmbeddingKind, MultiVectorEmbeddings
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.retrievers import create_component
from embedlab_embedlens.lens import ALIVE, CLASSES, DEAD, SINK, VocabularyProbe, classify, keep_mask

EMBEDLAB_API_VERSION = "1.1"
POLICIES = ("triage", "random", "alive", "none")
#: Names of the input-embedding matrix in transformers checkpoints (BERT-style first).
INPUT_EMBEDDINGS = ("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight",
                    "model.embed_tokens.weight", "embed_tokens.weight")
_v = attrs.validators


def _classes(value: Any) -> tuple[str, ...]:
    names = (value,) if isinstance(value, str) else tuple(value)
    unknown = [n for n in names if n not in ("dead", "sink")]
    if unknown or not names:
        raise ValueError(f"drop must name 'dead' and/or 'sink', got {value!r}")
    return names


class EmbedLens(embedlab.Component):
    """A multi-vector encoder whose documents keep only their alive tokens (see the module docstring)."""

    kind = "encoder"
    name = "embedlens"

    @attrs.frozen(kw_only=True)
    class Config:
        """``encoder``: the token encoder (name or table; a transformers encoder, used with
        ``output = "tokens"``); ``policy`` (``triage``, ``random``, ``alive``, ``none``); ``drop``:
        the classes triage removes; ``top_k`` nearest vocabulary entries probed (3, as the official
        pruning code); ``dead_below``: a token whose nearest entry is less similar is dead;
        ``sink_norm_z``: the norm-outlier rule for sinks (None: off); ``queries``: ``keep`` every
        query token (late-interaction practice) or ``prune`` them too; ``min_tokens`` kept per text;
        ``seed`` (random controls)."""

        encoder: Any = attrs.field(default="minilm-tokens")
        policy: str = attrs.field(default="triage", validator=_v.in_(POLICIES))
        drop: tuple[str, ...] = attrs.field(default=("dead", "sink"), converter=_classes)
        top_k: int = attrs.field(default=3, validator=[_v.instance_of(int), _v.ge(1)])
        dead_below: float = attrs.field(default=0.25, validator=[_v.instance_of((int, float)), _v.ge(-1), _v.le(1)])
        sink_norm_z: float | None = attrs.field(default=None, validator=_v.optional([_v.instance_of((int, float)),
                                                                                       _v.gt(0)]))
        queries: str = attrs.field(default="keep", validator=_v.in_(("keep", "prune")))
        min_tokens: int = attrs.field(default=1, validator=[_v.instance_of(int), _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_v.instance_of(int), _v.ge(0)])

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.tokens = raw_token_encoder(create_component("encoder", self.config.encoder), self.name)
        self._probe: VocabularyProbe | None = None

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.MULTI_VECTOR

    @property
    def dim(self) -> int:
        return int(self.tokens.dim)

    @property
    def probe(self) -> VocabularyProbe:
        """The input-embedding matrix and special token ids of the token encoder's model (loaded once)."""
        if self._probe is None:
            model_dir = resolve_model_dir(getattr(self.tokens.config, "model_path", None))
            tokenizer = import_transformers().AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
            self._probe = VocabularyProbe(weight_tensor(model_dir, INPUT_EMBEDDINGS), tokenizer.all_special_ids)
        return self._probe

    def labels(self, raw: MultiVectorEmbeddings) -> np.ndarray:
        """Class of every (un-normalised) token vector: 0 alive, 1 dead, 2 sink."""
        c = self.config
        ids, sims = self.probe.nearest(raw.vectors, c.top_k)
        return classify(ids, sims, self.probe.special, np.linalg.norm(raw.vectors, axis=1), raw.offsets,
                        dead_below=c.dead_below, sink_norm_z=c.sink_norm_z)

    def prune(self, raw: MultiVectorEmbeddings) -> MultiVectorEmbeddings:
        """Drop tokens by ``policy`` and L2-normalise the rest."""
        c = self.config
        vectors = raw.vectors
        if c.policy != "none":
            labels = self.labels(raw)
            keep = keep_mask(labels, raw.offsets, [CLASSES[n] for n in c.drop], c.policy, c.seed, c.min_tokens,
                             priority=-labels.astype(np.float32))
            kept_before = np.concatenate([[0], np.cumsum(keep, dtype=np.int64)])
            raw = MultiVectorEmbeddings(vectors[keep], kept_before[raw.offsets])
        norms = np.linalg.norm(raw.vectors, axis=1, keepdims=True)
        return MultiVectorEmbeddings(raw.vectors / np.where(norms > 0, norms, 1.0), raw.offsets)

    def encode_documents(self, texts: Sequence[str]) -> MultiVectorEmbeddings:
        return self.prune(self.tokens.encode_documents(texts))

    def encode_queries(self, texts: Sequence[str]) -> MultiVectorEmbeddings:
        raw = self.tokens.encode_queries(texts)
        if self.config.queries == "prune":
            return self.prune(raw)
        norms = np.linalg.norm(raw.vectors, axis=1, keepdims=True)
        return MultiVectorEmbeddings(raw.vectors / np.where(norms > 0, norms, 1.0), raw.offsets)

    def save(self, path: str | Path) -> None:
        """The configuration and the special token ids the triage used (checked against the model on load)."""
        save_state(path, self, arrays={"special_ids": np.flatnonzero(self.probe.special).astype(np.int64)},
                   meta={"vocabulary_rows": int(len(self.probe.vocabulary))})

    @classmethod
    def load(cls, path: str | Path) -> EmbedLens:
        state = load_state(path, kind=cls.kind, name=cls.name)
        try:
            lens = cls(**state.config)
        except (ConfigError, TypeError, ValueError) as error:
            raise StateError(f"{path}: saved config is invalid here: {error}") from None
        saved = state.arrays.get("special_ids")
        if saved is None or saved.ndim != 1 or saved.dtype.kind not in "iu" or \
                not np.array_equal(saved, np.flatnonzero(lens.probe.special)):
            raise StateError(f"{path}: the saved special token ids do not match the model's tokenizer")
        return lens


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the encoder ``embedlens``."""
    registry.add("encoder", "embedlens", EmbedLens)


__all__ = ["ALIVE", "DEAD", "EMBEDLAB_API_VERSION", "POLICIES", "SINK", "EmbedLens", "VocabularyProbe",
           "classify", "embedlab_register", "keep_mask"]
