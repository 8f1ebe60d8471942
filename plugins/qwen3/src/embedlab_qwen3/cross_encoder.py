"""The trainable yes/no cross-encoder: a BERT-style encoder (all-MiniLM-L6-v2) read at the answer
slot of :mod:`embedlab_qwen3.prompt` by its masked-language-model decoder, tied to the word
embeddings as in BERT (no output bias, as Qwen3's ``lm_head``).

``score = logit(yes) - logit(no) = (E[yes] - E[no]) . h`` and the reranker's probability is
``sigmoid(score)`` (report eq. 5), which is the softmax over the two answer tokens. Training is SFT
on the answer token (report eq. 4): ``-log p(label)`` with ``p`` the softmax over the whole
vocabulary (``objective = "vocabulary"``, the language-model loss of the paper) or over the two
answer tokens only (``"yes-no"``, binary cross-entropy on the score).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from embedlab_train.model import TrainableModel

from embedlab_qwen3.prompt import PairTokenizer, answer_positions

OBJECTIVES = ("vocabulary", "yes-no")


class YesNoModel(TrainableModel):
    """A Hugging Face encoder whose answer-slot logits for (query, document) pairs carry gradients."""

    def __init__(self, model_dir: Path, *, instruction: str, max_length: int, max_query_length: int,
                 device: torch.device) -> None:
        super().__init__(model_dir, pooling="cls", normalize=False, max_length=max_length, device=device)
        self.pairs = PairTokenizer(self.tokenizer, instruction, max_length, max_query_length)
        self.yes, self.no = self.pairs.answer_ids()

    def pair_features(self, queries: Sequence[str], documents: Sequence[str]) -> tuple[dict[str, torch.Tensor],
                                                                                       torch.Tensor]:
        """Right-padded model inputs of the pairs and the answer slot of each row."""
        ids = self.pairs.encode(queries, documents)
        lengths = np.fromiter(map(len, ids), dtype=np.int64)
        width = int(lengths.max())
        input_ids = np.full((len(ids), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, :len(seq)] = seq
            mask[row, :len(seq)] = 1
        features = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": np.zeros_like(mask)}
        tensors = {name: torch.from_numpy(features[name]).to(self.device) for name in self.input_names}
        return tensors, torch.from_numpy(answer_positions(lengths)).to(self.device)

    def answer_states(self, queries: Sequence[str], documents: Sequence[str]) -> torch.Tensor:
        """``(n, dim)`` last hidden states at the answer slot."""
        features, slots = self.pair_features(queries, documents)
        hidden = self.model(**features).last_hidden_state
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), slots]

    @property
    def decoder(self) -> torch.Tensor:
        """``(vocabulary, dim)``: the tied decoder (the input word embeddings)."""
        return self.model.get_input_embeddings().weight

    def answer_logits(self, states: torch.Tensor) -> torch.Tensor:
        """``(n, 2)`` logits of "yes" and "no"."""
        return states @ self.decoder[[self.yes, self.no]].T

    def scores(self, queries: Sequence[str], documents: Sequence[str]) -> torch.Tensor:
        """``logit(yes) - logit(no)`` of each pair."""
        logits = self.answer_logits(self.answer_states(queries, documents))
        return logits[:, 0] - logits[:, 1]

    def sft_loss(self, queries: Sequence[str], documents: Sequence[str], relevant: Sequence[bool],
                 objective: str) -> torch.Tensor:
        """Mean ``-log p(label | query, document)``, label "yes" where ``relevant`` else "no"."""
        states = self.answer_states(queries, documents)
        relevant_t = torch.as_tensor(np.asarray(relevant, dtype=bool), device=states.device)
        if objective == "vocabulary":
            targets = torch.where(relevant_t, self.yes, self.no)
            return torch.nn.functional.cross_entropy(states @ self.decoder.T, targets)
        if objective == "yes-no":
            return torch.nn.functional.cross_entropy(self.answer_logits(states), (~relevant_t).long())
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
