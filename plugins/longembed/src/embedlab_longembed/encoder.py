"""``longembed``: all-MiniLM-L6-v2 read past its window by LongEmbed's training-free extensions.

An input that fits the original window (``original_length`` tokens with [CLS] and [SEP]) is encoded
by the base ``minilm`` encoder itself, so short inputs are bit-identical to it for every method.
A longer one is encoded whole, up to ``target_length`` tokens, by ``method``:

* ``truncate``: cut at ``original_length`` (the base encoder with that ``max_length``; the baseline);
* ``pcw``: parallel context windows, each encoded alone, their mean-pooled vectors averaged;
* ``gp`` / ``rp``: grouped / recurrent position ids (:mod:`embedlab_longembed.positions`);
* ``pi``: position interpolation on a table of ``original_length * factor`` rows,
  ``factor = ceil(target_length / original_length)`` (the paper's fixed factor).

Inputs longer than ``target_length`` are cut there, with a warning that counts them.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any, Sequence

import attrs
import numpy as np
from embedlab_transformers import MiniLM
from embedlab_transformers.pooling import sentence_embeddings

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.texts import check_texts
from embedlab.threads import torch_threads
from embedlab_longembed.positions import (
    grouped_positions,
    interpolated_table,
    parallel_windows,
    recurrent_positions,
)

METHODS = ("truncate", "pcw", "gp", "rp", "pi")
#: Position rows of all-MiniLM-L6-v2 (BERT's 512).
MODEL_POSITIONS = 512


def _length(low: int, high: int | None = None):  # type: ignore[no-untyped-def]
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high and value > high):
            raise ValueError(f"{attribute.name} must be an integer in [{low}, {high or 'inf'}], got {value!r}")
    return check


class LongEmbedEncoder(Component):
    """MiniLM with a context extension for long documents (see the module docstring)."""

    kind = "encoder"
    name = "longembed"

    @attrs.frozen(kw_only=True)
    class Config:
        """``method`` (one of :data:`METHODS`), the window the model was used with
        (``original_length``, <= 512) and the longest input read (``target_length``)."""

        method: str = attrs.field(default="pcw", validator=attrs.validators.in_(METHODS))
        original_length: int = attrs.field(default=256, validator=_length(8, MODEL_POSITIONS))
        target_length: int = attrs.field(default=4096, validator=_length(8))
        batch_size: int = attrs.field(default=32, validator=_length(1))
        num_threads: int | None = attrs.field(
            default=None, validator=attrs.validators.optional(_length(1)))
        show_progress: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))

        def __attrs_post_init__(self) -> None:
            if self.target_length < self.original_length:
                raise ValueError(f"target_length ({self.target_length}) must be >= original_length "
                                 f"({self.original_length})")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        c = self.config
        self.base = MiniLM(max_length=c.original_length, backend="torch", batch_size=c.batch_size,
                           num_threads=c.num_threads, show_progress=c.show_progress)
        self._interpolated: Any = None
        self._warned = False

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def max_tokens(self) -> int:
        """Tokens of a text this encoder reads (``target_length`` less [CLS] and [SEP])."""
        return self.config.target_length - 2

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        """The base encoder's token spans (the :class:`embedlab.protocols.Tokenizes` capability)."""
        return self.base.token_spans(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "queries")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "documents")

    def _encode(self, texts: Sequence[str], what: str) -> np.ndarray:
        items = check_texts(texts, f"{self.name} {what}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        c = self.config
        ids = self.base.tokenizer(items, add_special_tokens=False, verbose=False)["input_ids"]
        long = [i for i, row in enumerate(ids) if len(row) + 2 > c.original_length]
        encode = self.base.encode_queries if what == "queries" else self.base.encode_documents
        if c.method == "truncate" or not long:
            return np.asarray(encode(items))
        out = np.empty((len(items), self.dim), dtype=np.float32)
        short = np.setdiff1d(np.arange(len(items)), long)
        if short.size:
            out[short] = encode([items[i] for i in short.tolist()])
        cut = [i for i in long if len(ids[i]) > self.max_tokens]
        if cut and not self._warned:
            self._warned = True
            warnings.warn(f"{self.name}: {len(cut)} of {len(items)} texts are longer than target_length="
                          f"{c.target_length} tokens and were cut there (first: item {cut[0]}). Shown once "
                          "per encoder.", UserWarning, stacklevel=3)
        for i in long:
            out[i] = self._encode_long(ids[i][:self.max_tokens])
        return out

    # -- one long input ------------------------------------------------------------------------

    def _encode_long(self, tokens: list[int]) -> np.ndarray:
        c, tokenizer = self.config, self.base.tokenizer
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        if c.method == "pcw":
            windows = parallel_windows(len(tokens), c.original_length - 2)
            pooled = [self._forward(self._model, [cls, *tokens[a:b], sep], None, normalize=False)
                      for a, b in windows]
            mean = np.mean(pooled, axis=0)
            return mean / max(float(np.linalg.norm(mean)), 1e-12)
        full = [cls, *tokens, sep]
        if c.method == "gp":
            return self._forward(self._model, full, grouped_positions(len(full), c.original_length))
        if c.method == "rp":
            return self._forward(self._model, full, recurrent_positions(len(full), c.original_length))
        return self._forward(self._pi_model, full, np.arange(len(full)))

    @property
    def _model(self) -> Any:
        return self.base.loaded.backend.model

    @property
    def _pi_model(self) -> Any:
        """A copy of the model whose position table is interpolated (made once)."""
        if self._interpolated is None:
            import torch

            c = self.config
            factor = -(-c.target_length // c.original_length)
            model = copy.deepcopy(self._model)
            table = model.embeddings.position_embeddings.weight.detach().numpy()
            rows = torch.from_numpy(interpolated_table(table, c.original_length, factor))
            model.embeddings.position_embeddings = torch.nn.Embedding.from_pretrained(rows, freeze=True)
            self._interpolated = model
        return self._interpolated

    def _forward(self, model: Any, ids: list[int], positions: np.ndarray | None, normalize: bool = True) -> np.ndarray:
        import torch

        tensor = torch.tensor([ids], dtype=torch.long)
        inputs = {"input_ids": tensor, "attention_mask": torch.ones_like(tensor),
                  "token_type_ids": torch.zeros_like(tensor)}
        if positions is not None:
            inputs["position_ids"] = torch.from_numpy(np.ascontiguousarray(positions, dtype=np.int64))[None]
        with torch.inference_mode(), torch_threads(self.config.num_threads):
            hidden = model(**inputs).last_hidden_state.float().numpy()
        return sentence_embeddings(hidden, np.ones(hidden.shape[:2], dtype=np.int64), "mean", normalize)[0]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_interpolated": None}

