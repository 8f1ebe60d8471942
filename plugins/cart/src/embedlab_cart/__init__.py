"""embedlab-cart: CART (Context-Anchored Recurrent Transformer) as a small text encoder trained from
scratch through embedlab-train's loop, and the dense baseline at matched stored parameters
(``architecture = "dense"``). See :mod:`embedlab_cart.model` and the README."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_train.losses import positive_number
from embedlab_train.settings import TrainingSettings
from embedlab_train.student import Trained, TrainsStudent
from embedlab_transformers.config_fields import flag_field, int_at_least, progress_field, threads_field
from embedlab_transformers.model_files import default_model_dir, import_transformers

import embedlab
from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.texts import check_texts
from embedlab.threads import torch_threads
from embedlab_cart.model import CART, Dense, body_parameters, matched_dense_layers

EMBEDLAB_API_VERSION = "1.1"
WEIGHTS = "cart.safetensors"
ARCHITECTURES = ("recurrent", "dense")
_v = attrs.validators


class TextModel(torch.nn.Module):
    """The student: MiniLM's WordPiece tokenizer, a CART or dense module, L2-normalised mean pooling
    (an :class:`embedlab_train.model.Student`)."""

    weights_name = WEIGHTS

    def __init__(self, model: torch.nn.Module, tokenizer: Any, max_length: int, dim: int,
                 device: torch.device) -> None:
        super().__init__()
        self.model = model.to(device)
        self.tokenizer, self.max_length, self._dim, self.device = tokenizer, max_length, dim, device

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str], iterations: int | None = None) -> torch.Tensor:
        if not texts:
            return torch.zeros((0, self.dim), device=self.device)
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                                 return_tensors="pt")
        padding = encoded["attention_mask"].to(self.device) == 0
        pooled = self.model(encoded["input_ids"].to(self.device), padding, iterations)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def state_files(self) -> dict[str, bytes]:
        from safetensors.torch import save

        return {WEIGHTS: save({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()})}

    def load_weights(self, file: Path) -> None:
        from safetensors.torch import load_file

        self.model.load_state_dict(load_file(str(file), device=str(self.device)), strict=True)


class CARTEncoder(TrainsStudent, Component):
    """A text encoder trained from scratch: CART (``architecture = "recurrent"``) or the dense
    baseline (``"dense"``, ``layers`` deep; None: matched to CART's stored parameters)."""

    kind = "encoder"
    name = "cart"

    @attrs.frozen(kw_only=True)
    class Config(TrainingSettings):
        """``architecture``; width ``dim``, ``heads``, feed-forward ``mult``; CART's ``prelude``
        layers, core ``iterations`` R and anchor ``latent`` dims; the dense baseline's ``layers``;
        ``max_length`` tokens (MiniLM's WordPiece vocabulary); ``batch_size``, ``num_threads``,
        ``show_progress``; the training settings of embedlab-train (``lr`` 1e-3, 10 epochs)."""

        architecture: str = attrs.field(default="recurrent", validator=_v.in_(ARCHITECTURES))
        dim: int = attrs.field(default=128, validator=int_at_least(2))
        heads: int = attrs.field(default=4, validator=int_at_least(1))
        mult: int = attrs.field(default=4, validator=int_at_least(1))
        prelude: int = attrs.field(default=1, validator=int_at_least(0))
        iterations: int = attrs.field(default=4, validator=int_at_least(0))
        latent: int = attrs.field(default=64, validator=int_at_least(1))
        layers: int | None = attrs.field(default=None, validator=_v.optional(int_at_least(1)))
        max_length: int = attrs.field(default=128, validator=int_at_least(2))
        batch_size: int = attrs.field(default=64, validator=int_at_least(1))
        normalize: bool = flag_field(True)
        num_threads: int | None = threads_field()
        show_progress: bool = progress_field()
        lr: float = attrs.field(default=1e-3, validator=positive_number)
        epochs: int = attrs.field(default=10, validator=int_at_least(1))

        def __attrs_post_init__(self) -> None:
            if self.dim % self.heads:
                raise ValueError(f"dim={self.dim} must be a multiple of heads={self.heads}")
            if not self.normalize:
                raise ValueError("cart encodes L2-normalised vectors (normalize must be true)")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.setup_training()
        self.tokenizer = import_transformers().AutoTokenizer.from_pretrained(default_model_dir(),
                                                                             local_files_only=True)
        self._module: torch.nn.Module | None = None

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return self.config.dim

    @property
    def dense_layers(self) -> int:
        c = self.config
        return c.layers or matched_dense_layers(c.dim, c.heads, c.prelude, c.latent, c.mult)

    def fresh_module(self) -> torch.nn.Module:
        """The initial module, seeded by ``seed`` (torch's global RNG left as it was)."""
        c = self.config
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(c.seed)
            if c.architecture == "dense":
                return Dense(len(self.tokenizer), c.dim, c.heads, self.dense_layers, c.mult, c.max_length)
            return CART(len(self.tokenizer), c.dim, c.heads, c.prelude, c.iterations, c.latent, c.mult, c.max_length)

    @property
    def module(self) -> torch.nn.Module:
        if self._module is None:
            self._module = self.fresh_module().eval()
        return self._module

    @property
    def parameters(self) -> dict[str, int]:
        """Stored parameters: all, and outside the embeddings (what the comparison matches)."""
        return {"total": sum(p.numel() for p in self.module.parameters()), "body": body_parameters(self.module)}

    def _student(self, module: torch.nn.Module, device: torch.device) -> TextModel:
        return TextModel(module, self.tokenizer, self.config.max_length, self.config.dim, device)

    # -- TrainsStudent hooks --------------------------------------------------------------------

    def base_identity(self) -> dict[str, Any]:
        vocab = hashlib.sha256("\n".join(self.tokenizer.convert_ids_to_tokens(range(len(self.tokenizer))))
                               .encode()).hexdigest()
        return {"vocabulary": vocab, "dense_layers": self.dense_layers}

    def build_student(self, device: torch.device) -> TextModel:
        return self._student(self.fresh_module(), device)

    def adopt(self, directory: Path) -> Trained:
        state = load_state(directory, kind=self.kind, name=self.name)
        if WEIGHTS not in state.files:
            raise StateError(f"{directory}: {WEIGHTS} missing from the {self.name} state")
        module = self.fresh_module()
        try:
            self._student(module, torch.device("cpu")).load_weights(state.files[WEIGHTS])
        except (RuntimeError, KeyError, ValueError, OSError) as error:
            raise StateError(f"{directory}: the saved weights do not fit this config: {error}") from None
        self._module = module.eval()
        digest = hashlib.sha256(Path(state.files[WEIGHTS]).read_bytes()).hexdigest()
        return Trained(Path(directory), digest, state.value("record", dict, default={}))

    # -- encoding -------------------------------------------------------------------------------

    def encode_queries(self, texts: Sequence[str], iterations: int | None = None) -> np.ndarray:
        return self._encode(check_texts(texts, f"{self.name} queries"), iterations)

    def encode_documents(self, texts: Sequence[str], iterations: int | None = None) -> np.ndarray:
        return self._encode(check_texts(texts, f"{self.name} documents"), iterations)

    def _encode(self, texts: list[str], iterations: int | None) -> np.ndarray:
        """``iterations`` (CART only): run the core another number of times than trained (variable-R)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        student = self._student(self.module, torch.device("cpu"))
        with torch.inference_mode(), torch_threads(self.config.num_threads):
            for start in range(0, len(texts), self.config.batch_size):
                out[start:start + self.config.batch_size] = \
                    student.embed(texts[start:start + self.config.batch_size], iterations).numpy()
        return out

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """The config and, once trained, the weights (safetensors)."""
        files = {} if self._trained is None else {WEIGHTS: (self._trained.directory / WEIGHTS).read_bytes()}
        save_state(path, self, files=files, meta={"record": self.training_record, "trained": self.trained,
                                                  "parameters": self.parameters})

    @classmethod
    def load(cls, path: str | Path) -> CARTEncoder:
        state = load_state(path, kind=cls.kind, name=cls.name)
        try:
            encoder = cls(**{**state.config, "checkpoint_dir": None})
        except (ConfigError, TypeError, ValueError) as error:
            raise StateError(f"{path}: saved config is invalid here: {error}") from None
        if WEIGHTS in state.files:
            encoder._trained = encoder.adopt(Path(path))
        return encoder


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the encoder ``cart`` (CART, or the dense baseline with ``architecture = "dense"``)."""
    registry.add("encoder", "cart", CARTEncoder)


__all__ = ["ARCHITECTURES", "CART", "CARTEncoder", "Dense", "EMBEDLAB_API_VERSION", "embedlab_register",
           "matched_dense_layers"]
