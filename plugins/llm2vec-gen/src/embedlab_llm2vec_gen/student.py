"""The trained part of LLM2Vec-Gen: ``n`` special-token input embeddings appended to every text read
by a frozen encoder, a reconstruction projection (their final states -> the frozen generator
decoder's input) and an alignment projection (-> the teacher's space; the embedding is its mean over
the ``n`` tokens), as in the official ``EncoderDecoderModel.encode`` where the alignment projection
reads the reconstruction projection's output.

Only :attr:`GenerativeEmbedder.model` (:class:`SpecialTokens`) has trainable parameters; the
encoder and the generator's decoder are frozen (``requires_grad`` off, kept outside ``model`` so the
optimiser, the checkpoints and the saved state never hold them).

MiniLM is bidirectional: the appended tokens also change the text tokens' states. In a causal LLM
(the paper's) the text's states do not depend on tokens appended after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from embedlab_dsi.model import DocidDecoder
from embedlab_train.loop import Trainer

from embedlab_llm2vec_gen.losses import alignment_loss, hardness_weighted_contrastive, reconstruction_loss

WEIGHTS = "special-tokens.safetensors"


class SpecialTokens(torch.nn.Module):
    """``tokens`` trainable input embeddings and the two projections."""

    def __init__(self, tokens: int, dim: int, teacher_dim: int, init: torch.Tensor) -> None:
        super().__init__()
        self.embeddings = torch.nn.Parameter(init.detach().clone().expand(tokens, dim).contiguous()
                                             + 0.02 * torch.randn(tokens, dim))
        self.reconstruction = torch.nn.Linear(dim, dim)
        self.alignment = torch.nn.Linear(dim, teacher_dim)


class GenerativeEmbedder(torch.nn.Module):
    """A frozen transformers encoder + :class:`SpecialTokens` (+ the frozen generator decoder for
    the reconstruction loss): an embedlab-train ``Student``."""

    weights_name = WEIGHTS

    def __init__(self, encoder: Any, tokenizer: Any, max_length: int, tokens: int, teacher_dim: int,
                 decoder: DocidDecoder | None = None) -> None:
        super().__init__()
        for frozen in (encoder, decoder):
            if frozen is not None:
                frozen.requires_grad_(False).eval()
        words = encoder.get_input_embeddings().weight
        self.frozen = (encoder, decoder)  # a tuple: not registered as submodules
        self.model = SpecialTokens(tokens, int(words.shape[1]), teacher_dim, words.mean(0))
        self.tokenizer, self.max_length, self.tokens = tokenizer, max_length, tokens
        self.device = torch.device("cpu")

    @property
    def dim(self) -> int:
        return int(self.model.alignment.out_features)

    def train(self, mode: bool = True) -> GenerativeEmbedder:
        """Only the special tokens' module changes mode; the frozen models stay in eval (no dropout)."""
        self.training = mode
        self.model.train(mode)
        return self

    def special_states(self, texts: Sequence[str]) -> torch.Tensor:
        """``(B, n, d)`` final states of the special tokens appended after each text's last token
        (``[CLS] text [SEP] s_1 .. s_n``; positions continue, padding after them)."""
        encoder = self.frozen[0]
        batch = self.tokenizer(list(texts), truncation=True, max_length=self.max_length, padding=True,
                               return_tensors="pt")
        ids, real = batch["input_ids"], batch["attention_mask"].bool()
        lengths = real.sum(1)
        width = ids.shape[1] + self.tokens
        offset = torch.arange(width)[None] - lengths[:, None]
        special = (offset >= 0) & (offset < self.tokens)
        padded = torch.zeros((len(ids), width), dtype=torch.long)
        padded[:, :ids.shape[1]] = torch.where(real, ids, 0)
        words = encoder.get_input_embeddings()(padded)
        inputs = torch.where(special[..., None], self.model.embeddings[offset.clamp(0, self.tokens - 1)], words)
        mask = torch.zeros((len(ids), width), dtype=torch.long)
        mask[:, :ids.shape[1]] = real.long()
        mask[special] = 1
        states = encoder(inputs_embeds=inputs, attention_mask=mask,
                         token_type_ids=torch.zeros_like(mask)).last_hidden_state
        return states[special].reshape(len(ids), self.tokens, -1)

    def forward_all(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``(B, dim)`` embeddings and the ``(B, n, d)`` soft prompts (the decoder's input)."""
        prompt = self.model.reconstruction(self.special_states(texts))
        return self.model.alignment(prompt).mean(1), prompt

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        return self.forward_all(texts)[0]

    def state_files(self) -> dict[str, bytes]:
        from safetensors.torch import save

        return {WEIGHTS: save({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()})}

    def load_weights(self, file: Path) -> None:
        from safetensors.torch import load

        self.model.load_state_dict(load(Path(file).read_bytes()))


def hardest_other(vectors: torch.Tensor) -> torch.Tensor:
    """For each row, the index of the most cosine-similar *other* row (the in-batch hard negative)."""
    unit = torch.nn.functional.normalize(vectors, dim=-1)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-torch.inf)
    return similarity.argmax(1)


class EmbedderTrainer(Trainer):
    """embedlab-train's loop with LLM2Vec-Gen's objective: example ``e`` is training query
    ``data.query[e]`` and the generator's response ``data.positive[e]`` (its codes ``targets`` and
    its teacher vector ``teacher[p]``); the weights of the terms come from ``weights``."""

    def __init__(self, *args: Any, targets: Sequence[Sequence[int]], teacher: np.ndarray,
                 weights: dict[str, float], alignment: str, scale: float, alpha: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.targets, self.teacher = targets, torch.as_tensor(teacher, dtype=torch.float32)
        self.weights, self.alignment, self.scale, self.alpha = weights, alignment, scale, alpha

    def batch_loss(self, rows: np.ndarray, negatives: np.ndarray) -> torch.Tensor:
        data = self.context.data
        texts = [data.queries.texts[q] for q in data.query[rows].tolist()]
        responses = data.positive[rows].tolist()
        embeddings, prompt = self.model.forward_all(texts)
        teacher = self.teacher[responses]
        total = torch.zeros(())
        if self.weights["reconstruction"]:
            decoder = self.model.frozen[1]
            total = total + self.weights["reconstruction"] * \
                reconstruction_loss(decoder, prompt, [self.targets[p] for p in responses])
        if self.weights["alignment"]:
            total = total + self.weights["alignment"] * alignment_loss(embeddings, teacher, self.alignment)
        if self.weights["contrastive"] and len(rows) > 1:
            total = total + self.weights["contrastive"] * hardness_weighted_contrastive(
                embeddings, teacher, teacher[hardest_other(teacher)], self.scale, self.alpha)
        return total
