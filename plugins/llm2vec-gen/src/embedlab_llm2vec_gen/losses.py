"""LLM2Vec-Gen's loss terms (BehnamGhader et al., arXiv 2603.10913, 2026; official code
McGill-NLP/llm2vec-gen, ``losses.py``):

* **reconstruction**: the frozen generator's decoder reads the special tokens' projected states as
  its only input and must emit the generator's own response (token cross-entropy, teacher forcing);
* **alignment**: the embedding (mean over the special tokens of the alignment projection) against the
  teacher's embedding of that response, mean squared error (the paper's) or cosine distance;
* **contrastive** (optional): InfoNCE of the query embedding against the positives and one hard
  negative per query, the hard negative's term weighted by ``exp(alpha * cos(q, hard negative))``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from embedlab_dsi.model import DocidDecoder, sequence_loss

ALIGNMENTS = ("mse", "cosine")


def reconstruction_loss(decoder: DocidDecoder, prompt: torch.Tensor, targets: Sequence[Sequence[int]]) -> torch.Tensor:
    """Token cross-entropy of ``decoder`` emitting ``targets[i]`` from the ``(B, n, d)`` soft prompt ``prompt[i]``."""
    mask = torch.ones(prompt.shape[:2], dtype=torch.bool, device=prompt.device)
    return sequence_loss(decoder, prompt, mask, targets)


def alignment_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str = "mse") -> torch.Tensor:
    """``mse``: mean over every coordinate of ``(student - teacher)^2``; ``cosine``: mean of ``1 - cos``."""
    if student.shape != teacher.shape:
        raise ValueError(f"alignment: student {tuple(student.shape)} and teacher {tuple(teacher.shape)} differ")
    if kind == "mse":
        return torch.nn.functional.mse_loss(student, teacher)
    if kind == "cosine":
        return (1 - torch.nn.functional.cosine_similarity(student, teacher, dim=-1)).mean()
    raise ValueError(f"alignment must be one of {ALIGNMENTS}, got {kind!r}")


def hardness_weighted_contrastive(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor,
                                  scale: float = 20.0, alpha: float = 0.0) -> torch.Tensor:
    """Cosine InfoNCE over the candidates ``[positives; negatives]`` (``queries[i]``'s positive is
    ``positives[i]``, its hard negative ``negatives[i]``): ``-log(e^{s l_ii} / sum_j w_ij e^{s l_ij})``
    with ``w_ij = exp(alpha * l_{i, B+i})`` (detached) on the hard negative's term and 1 elsewhere
    (``alpha = 0``: plain InfoNCE)."""
    if not (queries.shape == positives.shape == negatives.shape):
        raise ValueError("contrastive: queries, positives and negatives must have the same shape")
    rows = torch.arange(len(queries), device=queries.device)
    candidates = torch.nn.functional.normalize(torch.cat([positives, negatives]), dim=-1)
    cosines = torch.nn.functional.normalize(queries, dim=-1) @ candidates.T
    logits = scale * cosines
    if alpha:
        log_weights = torch.zeros_like(logits)
        log_weights[rows, rows + len(queries)] = alpha * cosines[rows, rows + len(queries)].detach()
        logits = logits + log_weights
    return (torch.logsumexp(logits, dim=1) - scale * cosines[rows, rows]).mean()
