"""Hidden states of a frozen transformers encoder, computed once per list of texts and cached.

A pooling head trained over a frozen encoder sees the same texts every epoch, and every head of an
experiment sees the same texts: running the transformer once and caching its hidden states makes
head training and evaluation cost only the head. Two views are kept, both float32:

* ``layers`` ``(n, L + 1, d)``: the masked mean over tokens of every hidden state (index 0 is the
  embedding layer, ``L`` the last), what multi-layer poolers read (6 x 384 floats per MiniLM text);
* ``tokens`` ``(total, d)`` with ``offsets`` ``(n + 1,)``: the last layer's token vectors, padding
  removed (special tokens kept, as mean pooling counts them), what token-level poolers read.

The mean over tokens of ``tokens`` is ``layers[:, L]``: MiniLM's own mean pooling. Entries live in
``$EMBEDLAB_CACHE_DIR/hidden-states/`` as :mod:`embedlab.persistence` state directories keyed by the
sha256 of the model's weights, ``max_length`` and the texts; they are memory-mapped on load, so a
1.2 M-token corpus (SciFact at 256 tokens: 1.9 GB) is not read into memory at once.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_transformers.backends import load_torch_model, model_input_names
from embedlab_transformers.batching import length_sorted_batches, padding_values, tokenize
from embedlab_transformers.model_files import import_transformers, model_max_length, weights_sha256
from tqdm.auto import tqdm

from embedlab.cache import default_cache_dir, texts_hash
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.threads import torch_threads

FORMAT = "hidden-states-1"


@attrs.frozen(eq=False)
class HiddenStates:
    """Per-layer means and last-layer token vectors of ``n`` texts (see the module docstring)."""

    layers: np.ndarray
    tokens: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def dim(self) -> int:
        return int(self.layers.shape[2])

    def token_vectors(self, row: int) -> np.ndarray:
        """``(T, d)`` last-layer token vectors of the text at ``row``."""
        return np.asarray(self.tokens[self.offsets[row]:self.offsets[row + 1]], dtype=np.float32)


def pad_tokens(vectors: Sequence[np.ndarray], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Stack variable-length ``(T_i, dim)`` arrays into ``(n, longest, dim)``, zero-padded on the
    right, with the ``(n, longest)`` boolean mask of real tokens."""
    width = max((len(v) for v in vectors), default=0)
    states = np.zeros((len(vectors), width, dim), dtype=np.float32)
    mask = np.zeros((len(vectors), width), dtype=bool)
    for i, v in enumerate(vectors):
        states[i, :len(v)] = v
        mask[i, :len(v)] = True
    return states, mask


class FrozenEncoder:
    """A transformers model directory run by torch without gradients, giving :class:`HiddenStates`."""

    def __init__(self, model_dir: Path, max_length: int | None, batch_size: int = 32, num_threads: int | None = None,
                 show_progress: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self.batch_size, self.num_threads, self.show_progress = batch_size, num_threads, show_progress
        self._max_length = max_length
        self._loaded: tuple[Any, Any, list[str], int] | None = None
        self._identity: str | None = None
        self._warned_truncation = False

    def _load(self) -> tuple[Any, Any, list[str], int]:
        if self._loaded is None:
            transformers = import_transformers()
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.model_dir, local_files_only=True)
            model = load_torch_model(self.model_dir)
            max_length = self._max_length or model_max_length(self.model_dir, model.config, tokenizer)
            positions = getattr(model.config, "max_position_embeddings", None)
            if isinstance(positions, int) and max_length > positions:
                raise ConfigError(f"max_length={max_length} exceeds the {positions} positions of the model in "
                                  f"{self.model_dir}")
            self._loaded = (tokenizer, model, model_input_names(model, tokenizer), max_length)
        return self._loaded

    @property
    def tokenizer(self) -> Any:
        return self._load()[0]

    @property
    def config(self) -> Any:
        """The model's Hugging Face config (hidden size, layers, vocabulary...)."""
        return self._load()[1].config

    @property
    def max_length(self) -> int:
        return self._load()[3]

    @property
    def dim(self) -> int:
        return int(self.config.hidden_size)

    @property
    def layers(self) -> int:
        """Transformer layers ``L`` (hidden states: ``L + 1`` with the embedding layer)."""
        return int(self.config.num_hidden_layers)

    @property
    def identity(self) -> str:
        """sha256 of the weights and ``max_length``: what the hidden states depend on besides the texts."""
        if self._identity is None:
            self._identity = f"{weights_sha256(self.model_dir)}|{self.max_length}"
        return self._identity

    def compute(self, texts: Sequence[str]) -> HiddenStates:
        """Run the model over ``texts`` (length-sorted batches; input order kept)."""
        tokenizer, model, input_names, max_length = self._load()
        n_layers = self.layers + 1
        if not texts:
            return HiddenStates(np.zeros((0, n_layers, self.dim), np.float32), np.zeros((0, self.dim), np.float32),
                                np.zeros(1, np.int64))
        tokens = tokenize(tokenizer, list(texts), max_length)
        if tokens.truncated and not self._warned_truncation:
            self._warned_truncation = True
            warnings.warn(f"frozen encoder {self.model_dir.name}: {len(tokens.truncated)} of {len(texts)} texts are "
                          f"longer than max_length={max_length} tokens and were truncated (first: item "
                          f"{tokens.truncated[0]}). Shown once per encoder.", UserWarning, stacklevel=2)
        lengths = tokens.lengths
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        layers = np.zeros((len(texts), n_layers, self.dim), dtype=np.float32)
        flat = np.zeros((int(offsets[-1]), self.dim), dtype=np.float32)
        batches = length_sorted_batches(tokens, input_names, padding_values(tokenizer), self.batch_size,
                                        getattr(tokenizer, "padding_side", "right"))
        total = -(-len(texts) // self.batch_size)
        bar = tqdm(total=total, desc="hidden states", unit="batch", disable=not self.show_progress or total <= 1)
        with torch.inference_mode(), torch_threads(self.num_threads), bar:
            for rows, inputs in batches:
                output = model(**{name: torch.from_numpy(inputs[name]) for name in input_names},
                               output_hidden_states=True)
                mask = torch.from_numpy(inputs["attention_mask"]).to(torch.float32)
                stacked = torch.stack(output.hidden_states, dim=1).float()  # (B, L + 1, T, d)
                means = torch.einsum("bltd,bt->bld", stacked, mask) / mask.sum(1).clamp(min=1e-9)[:, None, None]
                layers[rows] = means.numpy()
                last = stacked[:, -1].numpy()
                for j, row in enumerate(rows.tolist()):
                    keep = inputs["attention_mask"][j].astype(bool)
                    flat[offsets[row]:offsets[row + 1]] = last[j][keep]
                bar.update()
        return HiddenStates(layers, flat, offsets)

    def states(self, texts: Sequence[str], *, cache: bool = True) -> HiddenStates:
        """:meth:`compute` through the on-disk cache (``cache=False``: no cache). A damaged entry is
        recomputed with a warning."""
        if not cache:
            return self.compute(texts)
        key = hashlib.sha256(f"{FORMAT}|{self.identity}|{texts_hash(texts)}".encode()).hexdigest()
        path = hidden_states_dir() / key[:2] / key
        if path.exists():
            try:
                state = load_state(path, kind="hidden-states", mmap=True)
                return HiddenStates(state.arrays["layers"], state.arrays["tokens"], state.arrays["offsets"])
            except (StateError, KeyError, ValueError) as error:
                warnings.warn(f"hidden-states cache entry {path} is unusable ({error}); recomputing", stacklevel=2)
        computed = self.compute(texts)
        identity = {"kind": "hidden-states", "name": key, "config": {}, "distribution": "embedlab-train",
                    "version": FORMAT}
        save_state(path, None, {"layers": computed.layers, "tokens": computed.tokens, "offsets": computed.offsets},
                   meta={"texts": len(texts), "model": self.identity}, identity=identity)
        return computed


def hidden_states_dir() -> Path:
    """Where cached hidden states live: ``$EMBEDLAB_CACHE_DIR/hidden-states``."""
    return default_cache_dir().expanduser() / "hidden-states"
