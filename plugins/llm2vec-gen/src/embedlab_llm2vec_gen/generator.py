"""The frozen generator that LLM2Vec-Gen learns from, here a small seq2seq model trained on the spot:
embedlab-dsi's decoder (:class:`embedlab_dsi.model.DocidDecoder`) reading a frozen MiniLM's token
states and emitting word pieces of a response vocabulary (the MiniLM word pieces of the training
responses, plus an end token). It is trained with embedlab-train's loop (resumable checkpoints) to
answer a training query with the start of a relevant document, then frozen: its greedy answers are
the responses that the special tokens must reconstruct.

A large pretrained LLM answers any query from what it learned in pre-training; this one only knows
the training pairs it was fitted on (see the README).
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import torch
from embedlab_dsi.model import DocidDecoder, TokenMemory
from embedlab_train.loop import Trainer

from embedlab.errors import InvalidInputError


@attrs.frozen(eq=False)
class ResponseVocabulary:
    """The generator's output tokens: ``word_pieces[c]`` is the MiniLM id of code ``c``; code
    ``len(word_pieces)`` ends a response."""

    word_pieces: np.ndarray

    @property
    def end(self) -> int:
        return int(self.word_pieces.size)

    @property
    def size(self) -> int:
        return self.end + 1

    @classmethod
    def build(cls, responses: Sequence[Sequence[int]]) -> ResponseVocabulary:
        pieces = sorted({int(t) for r in responses for t in r})
        if not pieces:
            raise InvalidInputError("llm2vec-gen: the training responses hold no word piece")
        return cls(np.asarray(pieces, dtype=np.int64))

    def encode(self, word_pieces: Sequence[int]) -> list[int]:
        """Codes of ``word_pieces`` (pieces outside the vocabulary dropped) and the end code."""
        codes = np.searchsorted(self.word_pieces, np.asarray(word_pieces, dtype=np.int64))
        known = [int(c) for c, p in zip(codes.tolist(), word_pieces) if c < self.end and self.word_pieces[c] == p]
        return known + [self.end]

    def decode(self, codes: Sequence[int]) -> list[int]:
        """MiniLM word pieces of ``codes`` up to the first end code."""
        out = []
        for code in codes:
            if code == self.end:
                break
            out.append(int(self.word_pieces[code]))
        return out


def greedy_generate(decoder: DocidDecoder, memory: torch.Tensor, mask: torch.Tensor, max_length: int,
                    end: int) -> list[list[int]]:
    """Greedy codes (without the end code) for each row of ``memory``; at least one token each (the
    end code is barred at the first step) and at most ``max_length``."""
    with torch.inference_mode():
        prefix = torch.zeros((len(memory), 0), dtype=torch.long)
        finished = torch.zeros(len(memory), dtype=torch.bool)
        for step in range(max_length):
            logits = decoder(memory, mask, prefix)[:, -1]
            if step == 0:
                logits[:, end] = -torch.inf
            token = torch.where(finished, torch.full_like(finished, end, dtype=torch.long), logits.argmax(-1))
            prefix = torch.cat([prefix, token[:, None]], dim=1)
            finished |= token == end
            if bool(finished.all()):
                break
    return [[c for c in row if c != end] for row in prefix.tolist()]


def generate_responses(decoder: DocidDecoder, memory: TokenMemory, max_length: int, end: int,
                       batch_size: int = 64) -> list[list[int]]:
    """:func:`greedy_generate` over every row of ``memory`` in batches (the decoder in eval mode)."""
    was_training = decoder.training
    decoder.eval()
    out: list[list[int]] = []
    try:
        for start in range(0, len(memory), batch_size):
            states, mask = memory.batch(range(start, min(start + batch_size, len(memory))))
            out += greedy_generate(decoder, states, mask, max_length, end)
    finally:
        decoder.train(was_training)
    return out


class GeneratorTrainer(Trainer):
    """embedlab-train's loop with the response cross-entropy: example ``e`` is training query
    ``data.query[e]`` (memory row) answered by the codes of document ``data.positive[e]``."""

    def __init__(self, *args: Any, targets: Sequence[Sequence[int]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets = targets

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        data = self.context.data
        return self.model.id_loss(data.query[rows].tolist(), [self.targets[p] for p in data.positive[rows].tolist()])
