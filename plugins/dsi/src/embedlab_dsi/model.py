"""The seq2seq model: a frozen encoder's token states (MiniLM's, cached once per text) read by a small
Transformer decoder, trained from scratch, that emits document-id tokens.

The decoder is a stack of ``torch.nn.TransformerDecoderLayer`` (self-attention over the id prefix,
cross-attention over the encoder's token states) with learned token and position embeddings and a
linear output layer over the id vocabulary. The input side is :class:`TokenMemory`: the encoder's
last-layer token vectors of every text the model sees (inputs to index, training queries), stored
once in float16, so training and decoding cost only the decoder.

:class:`DSIModel` is an embedlab-train ``Student`` (weights file, ``state_files``, ``load_weights``),
so embedlab-train's loop trains it with its checkpoints, schedule and early stopping.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch

from embedlab.errors import StateError

WEIGHTS = "decoder.safetensors"
SETTINGS = "decoder.json"


@attrs.frozen
class DecoderShape:
    """The decoder's size: id ``vocab`` (+1 for the start token), longest id, width ``dim`` (the
    encoder's), ``layers``, ``heads``, feed-forward width, dropout."""

    vocab: int
    max_length: int
    dim: int
    layers: int = 2
    heads: int = 6
    feedforward: int = 768
    dropout: float = 0.1


class DocidDecoder(torch.nn.Module):
    """Next-token logits over the id vocabulary given encoder token states and an id prefix."""

    def __init__(self, shape: DecoderShape) -> None:
        super().__init__()
        self.shape = shape
        self.start = shape.vocab  # the start token's embedding row
        self.tokens = torch.nn.Embedding(shape.vocab + 1, shape.dim)
        self.positions = torch.nn.Embedding(shape.max_length + 1, shape.dim)
        layer = torch.nn.TransformerDecoderLayer(shape.dim, shape.heads, shape.feedforward, shape.dropout,
                                                 batch_first=True, norm_first=True)
        self.decoder = torch.nn.TransformerDecoder(layer, shape.layers)
        self.norm = torch.nn.LayerNorm(shape.dim)
        self.output = torch.nn.Linear(shape.dim, shape.vocab)

    def forward(self, memory: torch.Tensor, memory_mask: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """``(B, t + 1, vocab)`` logits of the token after each of ``[start] + prefix`` (``prefix``:
        ``(B, t)`` token ids; ``memory``: ``(B, T, dim)``; ``memory_mask``: True at real tokens)."""
        start = torch.full((prefix.shape[0], 1), self.start, dtype=torch.long, device=prefix.device)
        tokens = torch.cat([start, prefix], dim=1)
        steps = tokens.shape[1]
        x = self.tokens(tokens) + self.positions(torch.arange(steps, device=tokens.device))[None]
        causal = torch.triu(torch.ones(steps, steps, dtype=torch.bool, device=tokens.device), diagonal=1)
        hidden = self.decoder(x, memory, tgt_mask=causal, memory_key_padding_mask=~memory_mask)
        return self.output(self.norm(hidden))


def sequence_loss(decoder: DocidDecoder, memory: torch.Tensor, mask: torch.Tensor,
                  targets: Sequence[Sequence[int]]) -> torch.Tensor:
    """Mean token cross-entropy of ``decoder`` emitting each ``targets[i]`` while reading
    ``memory[i]`` (teacher forcing; targets of different lengths are padded and ignored past
    their end). Gradients reach ``memory`` too, so a module that writes the memory can be trained
    through a frozen decoder (embedlab-llm2vec-gen)."""
    width = max(len(t) for t in targets)
    gold = torch.full((len(targets), width), -100, dtype=torch.long, device=memory.device)
    for i, target in enumerate(targets):
        gold[i, :len(target)] = torch.as_tensor(target, dtype=torch.long)
    logits = decoder(memory, mask, gold[:, :-1].clamp(min=0))
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1),
                                             ignore_index=-100)


@attrs.frozen(eq=False)
class TokenMemory:
    """Encoder token states of ``n`` texts, padding removed: ``tokens[offsets[i]:offsets[i + 1]]``."""

    tokens: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @classmethod
    def from_hidden(cls, hidden: Any, segments: int = 0) -> TokenMemory:
        """From embedlab-train's cached :class:`~embedlab_train.hidden.HiddenStates` (float16 copy);
        ``segments`` > 0 averages each text's tokens over at most that many contiguous, near-equal
        runs (the decoder's cross-attention then reads ``segments`` vectors instead of every token)."""
        offsets = np.asarray(hidden.offsets, dtype=np.int64)
        if segments <= 0:
            return cls(np.asarray(hidden.tokens, dtype=np.float16), offsets)
        lengths = np.diff(offsets)
        counts = np.minimum(lengths, segments)
        starts = np.concatenate([offsets[i] + (np.arange(c) * lengths[i]) // c for i, c in enumerate(counts.tolist())])
        sums = np.add.reduceat(np.asarray(hidden.tokens, dtype=np.float32), starts.astype(np.int64), axis=0)
        sizes = np.diff(np.append(starts, offsets[-1]))
        pooled = (sums / sizes[:, None]).astype(np.float16)
        return cls(pooled, np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))

    @classmethod
    def concat(cls, parts: Sequence[TokenMemory]) -> TokenMemory:
        tokens = np.concatenate([p.tokens for p in parts])
        lengths = np.concatenate([np.diff(p.offsets) for p in parts])
        return cls(tokens, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    def batch(self, rows: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, d)`` float32 states of ``rows`` zero-padded on the right, and the ``(B, T)`` mask."""
        rows = [int(r) for r in rows]
        lengths = [int(self.offsets[r + 1] - self.offsets[r]) for r in rows]
        width = max(lengths, default=0)
        states = np.zeros((len(rows), width, self.tokens.shape[1]), dtype=np.float32)
        mask = np.zeros((len(rows), width), dtype=bool)
        for i, (r, n) in enumerate(zip(rows, lengths)):
            states[i, :n] = self.tokens[self.offsets[r]:self.offsets[r] + n]
            mask[i, :n] = True
        return torch.from_numpy(states), torch.from_numpy(mask)


class DSIModel(torch.nn.Module):
    """The trained part (the decoder) with the token states it reads: an embedlab-train ``Student``."""

    weights_name = WEIGHTS

    def __init__(self, shape: DecoderShape, memory: TokenMemory | None = None) -> None:
        super().__init__()
        self.model = DocidDecoder(shape)
        self.memory = memory
        self.device = torch.device("cpu")

    @property
    def dim(self) -> int:
        return self.model.shape.dim

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        raise TypeError("a DSI model maps texts to document ids; it does not embed them")

    def id_loss(self, rows: Sequence[int], targets: Sequence[Sequence[int]]) -> torch.Tensor:
        """Mean token cross-entropy of emitting each ``targets[i]`` for memory row ``rows[i]``
        (teacher forcing; ids of different lengths are padded and ignored past their end)."""
        if self.memory is None:
            raise StateError("DSI model: no token states to read")
        memory, mask = self.memory.batch(rows)
        return sequence_loss(self.model, memory, mask, targets)

    def state_files(self) -> dict[str, bytes]:
        from safetensors.torch import save

        weights = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        return {WEIGHTS: save(weights), SETTINGS: json.dumps(attrs.asdict(self.model.shape)).encode()}

    def load_weights(self, file: Path) -> None:
        from safetensors.torch import load

        self.model.load_state_dict(load(Path(file).read_bytes()))

    @classmethod
    def from_state(cls, files: dict[str, Path], memory: TokenMemory | None = None) -> DSIModel:
        """The model of a state directory's files (:meth:`state_files`)."""
        shape = DecoderShape(**json.loads(Path(files[SETTINGS]).read_text()))
        model = cls(shape, memory)
        model.load_weights(files[WEIGHTS])
        model.eval()
        return model


def weights_bytes(model: DSIModel) -> int:
    """Bytes of the decoder's weights (the model is the index)."""
    return sum(t.numel() * t.element_size() for t in model.model.state_dict().values())
