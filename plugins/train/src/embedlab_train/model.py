"""The trainable side of a transformers encoder: the Hugging Face model in torch, tokenised batches,
pooled embeddings with gradients, and the weights as safetensors bytes.

Pooling and normalisation mirror :mod:`embedlab_transformers.pooling` (the numpy functions the
encoder uses at inference), so training optimises exactly the vectors the encoder later produces.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import torch
from embedlab_transformers.backends import model_input_names
from embedlab_transformers.model_files import import_transformers, weight_files

from embedlab.errors import ConfigError

#: Files of a model directory copied next to the trained weights (whichever exist).
MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json",
               "spiece.model", "sentencepiece.bpe.model", "tokenizer.model", "vocab.json", "merges.txt",
               "added_tokens.json", "sentence_bert_config.json")
WEIGHTS = "model.safetensors"


def resolve_device(device: str) -> torch.device:
    """``cpu``, ``cuda``/``cuda:N`` (a clear error when CUDA is absent) or ``auto``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but torch sees no CUDA device (torch {torch.__version__}); "
                          "use device='cpu' or 'auto'")
    return torch.device(device)


class Student(Protocol):
    """What the training loop trains: any ``torch.nn.Module`` with these members. The trainable
    parameters are those of :attr:`model` that require gradients."""

    #: The module holding the trainable parameters (``named_parameters``, ``state_dict``).
    model: torch.nn.Module
    device: torch.device
    #: The file of :meth:`state_files` that holds the weights (what :meth:`load_weights` reads).
    weights_name: str

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """``(n, dim)`` embeddings of ``texts`` with gradients (in training mode)."""

    def state_files(self) -> dict[str, bytes]:
        """Every file of a saved state: the weights (:attr:`weights_name`) and what reads them."""

    def load_weights(self, file: Path) -> None:
        """Load the weights file written by :meth:`state_files`."""

    def train(self, mode: bool = True) -> torch.nn.Module: ...

    def eval(self) -> torch.nn.Module: ...


class TrainableModel(torch.nn.Module):
    """A Hugging Face ``AutoModel`` whose pooled sentence embeddings carry gradients (a :class:`Student`)."""

    weights_name = WEIGHTS

    def __init__(self, model_dir: Path, *, pooling: str, normalize: bool, max_length: int,
                 device: torch.device) -> None:
        super().__init__()
        transformers = import_transformers()
        self.model_dir = Path(model_dir)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = transformers.AutoModel.from_pretrained(model_dir, local_files_only=True,
                                                           dtype=torch.float32).to(device)
        self.input_names = model_input_names(self.model, self.tokenizer)
        self.pooling, self.normalize, self.max_length, self.device = pooling, normalize, max_length, device

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Padded (to the longest), truncated ``max_length`` token ids of ``texts``."""
        encoded = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                                 return_tensors="pt")
        names = dict.fromkeys(["attention_mask", *self.input_names])
        return {name: encoded[name].to(self.device) for name in names if name in encoded}

    def embed_tokens(self, features: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``(n, dim)`` pooled (and optionally L2-normalised) embeddings of tokenised texts."""
        hidden = self.model(**{name: features[name] for name in self.input_names}).last_hidden_state
        mask = features["attention_mask"]
        if self.pooling == "mean":
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        else:  # cls: the first non-padding token (left or right padding)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), mask.argmax(1)]
        return torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings of ``texts`` (empty input gives ``(0, dim)``)."""
        if not texts:
            return torch.zeros((0, self.model.config.hidden_size), device=self.device)
        return self.embed_tokens(self.tokenize(texts))

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    # -- weights --------------------------------------------------------------------------

    def weights_bytes(self) -> bytes:
        """The weights as the bytes of a ``model.safetensors`` file (tied weights stored once, as
        ``safetensors.torch.save_model`` does)."""
        from safetensors.torch import save_model

        with tempfile.TemporaryDirectory() as tmp:
            file = Path(tmp) / WEIGHTS
            save_model(self.model, str(file), metadata={"format": "pt"})
            return file.read_bytes()

    def load_weights(self, file: Path) -> None:
        """Load a ``model.safetensors`` file written by :meth:`weights_bytes` into the model."""
        from safetensors.torch import load_model

        load_model(self.model, str(file), strict=True, device=str(self.device))

    def state_files(self) -> dict[str, bytes]:
        """The model directory's files with the current weights: a complete Hugging Face model."""
        return {**model_files(self.model_dir), WEIGHTS: self.weights_bytes()}


def model_files(model_dir: Path) -> dict[str, bytes]:
    """The non-weight files of a model directory (config, tokenizer, sentence-transformers configs)."""
    return {name: (model_dir / name).read_bytes() for name in MODEL_FILES if (model_dir / name).is_file()}


def check_model_dir(model_dir: Path) -> None:
    """Training writes single-file safetensors: a sharded base model is refused with a clear error."""
    files = weight_files(model_dir)
    if len(files) != 1:
        raise ConfigError(f"{model_dir}: training needs the weights in one model.safetensors file "
                          f"(found {len(files)} shard(s))")
