"""Pooling heads trained over a frozen encoder: the ``pooling-head`` component kind and the
``frozen-head`` encoder.

A pooling head maps a frozen transformer's hidden states to one vector per text. It reads one of
two views of :mod:`embedlab_train.hidden` (its class attribute ``features``):

* ``"tokens"``: ``states`` ``(B, T, d)`` last-layer token vectors, zero-padded, and ``mask``
  ``(B, T)`` (True on real tokens): token-level poolers such as NV-Embed's latent attention;
* ``"layers"``: ``states`` ``(B, L + 1, d)`` masked means of every hidden state (0 = embedding
  layer) and ``mask`` None: multi-layer poolers (scalar mix, MLTP, MINER).

The ``frozen-head`` encoder runs the frozen model once per text list (cached hidden states), so
training and evaluating a head costs only the head. Training goes through the loop of
:mod:`embedlab_train.loop` (losses, samplers, held-out early stopping, checkpoints) with the head's
parameters as the only trainable ones. Built in: ``mean`` (no parameters: the frozen model's own
mean pooling) and ``linear`` (last-layer mean plus a zero-initialised residual linear map: the
supervised control a trained pooler is compared with at the same training budget).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, ClassVar, Sequence

import attrs
import numpy as np
import torch
from embedlab_transformers.config_fields import (
    flag_field,
    int_at_least,
    max_length_field,
    model_path_field,
    progress_field,
    threads_field,
)
from embedlab_transformers.model_files import resolve_model_dir, weights_sha256

from embedlab.components import NOT_IDENTITY, Component
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.texts import check_texts
from embedlab.threads import torch_threads
from embedlab_train.blocks import zero_
from embedlab_train.components import component_spec, create
from embedlab_train.data import TrainingSet
from embedlab_train.hidden import FrozenEncoder, HiddenStates, pad_tokens
from embedlab_train.losses import positive_number
from embedlab_train.settings import TrainingSettings
from embedlab_train.student import Trained, TrainsStudent

logger = logging.getLogger(__name__)
FEATURES = ("tokens", "layers")
HEAD_WEIGHTS = "head.safetensors"


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, d)`` mean of ``states`` ``(B, T, d)`` over the tokens where ``mask`` ``(B, T)`` is True."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class PoolingHead(Component):
    """A trainable pooler over hidden states (plugin-extensible component kind ``pooling-head``).

    Subclasses set :attr:`features` and implement :meth:`module`."""

    kind = "pooling-head"
    #: ``"tokens"`` or ``"layers"`` (see the module docstring).
    features: ClassVar[str] = "tokens"

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        """A freshly initialised module (the caller seeds torch's RNG) whose ``forward(states, mask)``
        returns ``(B, dim)`` vectors; ``layers`` is the number of transformer layers ``L``."""
        raise NotImplementedError


class LastLayerMean(torch.nn.Module):
    """The last layer's masked mean (``states[:, -1]`` of the ``layers`` view): the frozen model's
    own mean pooling, no parameters."""

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return states[:, -1]


class MeanHead(PoolingHead):
    """No parameters: the frozen encoder's mean pooling (the zero-shot reference of every head),
    read from the cached per-layer means (no token states needed)."""

    name = "mean"
    features = "layers"

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        return LastLayerMean()


class ResidualLinear(torch.nn.Module):
    """``m + W m + b`` of the last layer's mean ``m``; ``W``, ``b`` start at zero (identity)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(dim, dim)
        zero_(self.linear)

    def forward(self, states: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        last = states[:, -1]
        return last + self.linear(last)


class LinearHead(PoolingHead):
    """The same-budget supervised control: MiniLM's mean pooling followed by a zero-initialised
    residual ``Linear(d, d)``, trained exactly like any other head."""

    name = "linear"
    features = "layers"

    def module(self, dim: int, layers: int) -> torch.nn.Module:
        return ResidualLinear(dim)


class HeadModel(torch.nn.Module):
    """The student of ``frozen-head``: a head over cached hidden states (:class:`embedlab_train.model.Student`)."""

    weights_name = HEAD_WEIGHTS

    def __init__(self, module: torch.nn.Module, features: str, frozen: FrozenEncoder, *, normalize: bool,
                 device: torch.device, cache: bool = True) -> None:
        super().__init__()
        self.model = module.to(device)
        self.features, self.frozen, self.normalize, self.device, self.cache = features, frozen, normalize, device, cache
        self._sources: list[HiddenStates] = []
        self._rows: dict[str, tuple[int, int]] = {}

    @property
    def dim(self) -> int:
        return self.frozen.dim

    def register(self, texts: Sequence[str], *, cache: bool | None = None) -> None:
        """Compute (or read from the cache) the hidden states of ``texts`` so :meth:`embed` finds them."""
        source = len(self._sources)
        self._sources.append(self.frozen.states(list(texts), cache=self.cache if cache is None else cache))
        for row, text in enumerate(texts):
            self._rows.setdefault(text, (source, row))

    def inputs(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's ``(states, mask)`` for ``texts`` (unregistered texts computed, not cached)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._rows]
        if missing:
            self.register(missing, cache=False)
        where = [self._rows[t] for t in texts]
        if self.features == "layers":
            stacked = np.stack([self._sources[s].layers[r] for s, r in where]).astype(np.float32, copy=False)
            return torch.from_numpy(stacked).to(self.device), None
        states, mask = pad_tokens([self._sources[s].token_vectors(r) for s, r in where], self.dim)
        return torch.from_numpy(states).to(self.device), torch.from_numpy(mask).to(self.device)

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """``(n, dim)`` pooled (and optionally L2-normalised) embeddings, with gradients in training."""
        if not texts:
            return torch.zeros((0, self.dim), device=self.device)
        pooled = self.model(*self.inputs(texts))
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def state_files(self) -> dict[str, bytes]:
        from safetensors.torch import save

        return {HEAD_WEIGHTS: save({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()})}

    def load_weights(self, file: Path) -> None:
        from safetensors.torch import load_file

        self.model.load_state_dict(load_file(str(file), device=str(self.device)), strict=True)


class FrozenHeadEncoder(TrainsStudent, Component):
    """A frozen transformers encoder (all-MiniLM-L6-v2 by default) with a trainable pooling head
    (``LearnsFromQueries``). Untrained, a head that starts at the identity (``mean``, ``linear``,
    zero-initialised heads of other plugins) encodes exactly like ``minilm`` with the torch backend."""

    kind = "encoder"
    name = "frozen-head"
    #: The head when the config names none (presets of other plugins change it).
    default_head: ClassVar[Any] = "mean"

    @attrs.frozen(kw_only=True)
    class Config(TrainingSettings):
        """``head``: a ``pooling-head`` component (name or ``{name = ..., ...}``; default: the
        encoder's :attr:`default_head`); ``model_path`` (None: all-MiniLM-L6-v2), ``max_length``
        (256), ``batch_size``, ``normalize``, ``num_threads``, ``show_progress`` as for
        ``transformers``; ``cache_features``: keep hidden states in the embedlab cache; and the
        training settings of :class:`embedlab_train.settings.TrainingSettings` (heads default to
        ``lr`` 1e-3 and 10 epochs, early-stopped on held-out training queries)."""

        head: Any = attrs.field(default=None, converter=lambda v: v if v is None else component_spec(v, "head"))
        model_path: str | None = model_path_field()
        max_length: int | None = max_length_field(256)
        batch_size: int = attrs.field(default=32, validator=int_at_least(1))
        normalize: bool = flag_field(True)
        num_threads: int | None = threads_field()
        show_progress: bool = progress_field()
        cache_features: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool),
                                           metadata=NOT_IDENTITY)
        lr: float = attrs.field(default=1e-3, validator=positive_number)
        epochs: int = attrs.field(default=10, validator=int_at_least(1))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.setup_training()
        try:
            self.head = create("pooling-head", self.config.head or self.default_head)
        except (ConfigError, TypeError) as error:
            raise ConfigError(f"{self.name}: {error}") from error
        if self.head.features not in FEATURES:
            raise ConfigError(f"{self.name}: head {self.head.name!r} reads features {self.head.features!r}; "
                              f"expected one of {FEATURES}")
        self.base_dir = resolve_model_dir(self.config.model_path)
        config = self.config
        self.frozen = FrozenEncoder(self.base_dir, config.max_length, config.batch_size, config.num_threads,
                                    config.show_progress)
        self._module: torch.nn.Module | None = None

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return self.frozen.dim

    # -- the head ---------------------------------------------------------------------------

    def fresh_module(self) -> torch.nn.Module:
        """The head's initial module, seeded by ``seed`` (torch's global RNG left as it was)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            return self.head.module(self.frozen.dim, self.frozen.layers)

    @property
    def module(self) -> torch.nn.Module:
        """The head in use: trained weights once trained, else the initial ones."""
        if self._module is None:
            self._module = self.fresh_module().eval()
        return self._module

    def _student(self, module: torch.nn.Module, device: torch.device) -> HeadModel:
        return HeadModel(module, self.head.features, self.frozen, normalize=self.config.normalize, device=device,
                         cache=self.config.cache_features)

    # -- TrainsStudent hooks ----------------------------------------------------------------

    def base_identity(self) -> dict[str, Any]:
        return {"base_weights": weights_sha256(self.base_dir), "max_length": self.frozen.max_length}

    def build_student(self, device: torch.device) -> HeadModel:
        module = self.head.module(self.frozen.dim, self.frozen.layers)
        if not any(p.requires_grad for p in module.parameters()):
            raise ConfigError(f"{self.name}: head {self.head.name!r} has no trainable parameters; "
                              "use it without a train split")
        return self._student(module, device)

    def prepare_student(self, student: HeadModel, data: TrainingSet) -> None:  # type: ignore[override]
        student.register(list(data.queries.texts))
        student.register(data.documents)

    def adopt(self, directory: Path) -> Trained:
        state = load_state(directory, kind=self.kind, name=self.name)
        if HEAD_WEIGHTS not in state.files:
            raise StateError(f"{directory}: {HEAD_WEIGHTS} missing from the {self.name} state")
        module = self.fresh_module()
        student = self._student(module, torch.device("cpu"))
        try:
            student.load_weights(state.files[HEAD_WEIGHTS])
        except (RuntimeError, KeyError) as error:
            raise StateError(f"{directory}: the saved head does not fit head {self.head.name!r} "
                             f"with this config: {error}") from None
        self._module = module.eval()
        digest = hashlib.sha256(Path(state.files[HEAD_WEIGHTS]).read_bytes()).hexdigest()
        return Trained(Path(directory), digest, state.value("record", dict, default={}))

    # -- encoding -----------------------------------------------------------------------------

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(check_texts(texts, f"{self.name} queries"))

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(check_texts(texts, f"{self.name} documents"))

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        student = self._student(self.module, torch.device("cpu"))
        student.register(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with torch.inference_mode(), torch_threads(self.config.num_threads):
            for start in range(0, len(texts), self.config.batch_size):
                out[start:start + self.config.batch_size] = \
                    student.embed(texts[start:start + self.config.batch_size]).numpy()
        return out

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """The config and, once trained, the head's weights (the frozen model is referenced by
        ``model_path`` and checked by the sha256 of its weights on load)."""
        files = {} if self._trained is None else \
            {HEAD_WEIGHTS: (self._trained.directory / HEAD_WEIGHTS).read_bytes()}
        save_state(path, self, files=files, meta={"record": self.training_record, "trained": self.trained,
                                                  "base_weights": weights_sha256(self.base_dir)})

    @classmethod
    def load(cls, path: str | Path) -> FrozenHeadEncoder:
        """Read an encoder written by :meth:`save` (or a training run's final/best/checkpoint folder)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        encoder = state.build(cls, checkpoint_dir=None)
        base = state.value("base_weights", str, default=None)
        if base is not None and base != weights_sha256(encoder.base_dir):
            raise StateError(f"{path}: the head was trained over other base weights than {encoder.base_dir}")
        if HEAD_WEIGHTS in state.files:
            encoder._trained = encoder.adopt(Path(path))
        return encoder
