"""Task-agnostic, label-free "embedding-to-embedding" training of the recurrent binariser.

The only data are the float vectors themselves (and, for backward-compatible training, the codes
an older binariser gave the same items). Two objectives (``objective``):

* ``"nce"``, the paper's (Gan et al., sec. 3.2, as we read it: an NCE-form contrastive objective
  with hard negatives, only float vectors as input): each vector's code, decoded back to the
  (standardised) input space, must be closer by cosine to its own float vector than to the other
  float vectors of the batch (softmax at ``temperature``, cross-entropy);
* ``"similarity"``, ours (the first version of this plugin): KL divergence between the softmax of
  each vector's cosine similarities to the other vectors of the batch and the softmax of its
  code-space similarities ``c_i . c_j / (m * sum_t w_t**2)`` (what symmetric scoring returns).

Both add the reconstruction term: squared error of every loop's input-space reconstruction,
relative to the squared norm of the (standardised) input, averaged over loops, times
``reconstruction_weight``. **Backward-compatible training** (sec. 3.3) adds, with weight
``compatibility_weight``, a contrastive term that makes each new code's composite closer to the old
code of the same item than to the other items' old codes (code-space inner products, the score
symmetric distance calculation gives), so new query codes can search an index of old codes.

Random batches rarely hold a vector's true nearest neighbours, so a batch is half anchors
(drawn without replacement from a seeded permutation each epoch; the last, partial batch is
dropped) and half partners: for each anchor, one of its ``neighbours`` nearest fit vectors by
cosine (found once, exactly, before training): the hard negatives. Adam with a cosine
learning-rate decay.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from embedlab_bebr.model import RecurrentBinariser

_MASK = -1e9
#: Similarities held at once by the exact nearest-neighbour search (float32 entries: 64 MiB).
NEIGHBOUR_BUDGET = 1 << 24


def _masked_diagonal(logits: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(torch.eye(len(logits), dtype=torch.bool), _MASK)


def _contrastive(logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every row against its own column (the diagonal is the positive)."""
    return F.cross_entropy(logits, torch.arange(len(logits)))


def batch_loss(model: RecurrentBinariser, x: torch.Tensor, unit: torch.Tensor, config: Any, norm2: float,
               old: torch.Tensor | None = None) -> torch.Tensor:
    """Loss of one batch: ``x`` standardised model inputs, ``unit`` the L2-normalised originals,
    ``old`` the composites of the old codes of the same rows (backward-compatible training)."""
    _, composites = model(x)
    code = composites[-1]
    reconstructions = model.reconstructions(composites)
    if config.objective == "nce":
        decoded = F.normalize(reconstructions[-1], dim=1)
        loss = _contrastive(decoded @ F.normalize(x, dim=1).T / config.temperature)
    else:
        teacher = F.log_softmax(_masked_diagonal(unit @ unit.T / config.temperature), dim=1)
        student = F.log_softmax(_masked_diagonal(code @ code.T / (norm2 * config.temperature)), dim=1)
        loss = F.kl_div(student, teacher, log_target=True, reduction="batchmean")
    scale = x.pow(2).sum(dim=1).mean()
    errors = [(x - r).pow(2).sum(dim=1).mean() / scale for r in reconstructions]
    loss = loss + config.reconstruction_weight * torch.stack(errors).mean()
    if old is not None:
        loss = loss + config.compatibility_weight * _contrastive(code @ old.T / (norm2 * config.temperature))
    return loss


def neighbour_table(unit: torch.Tensor, k: int) -> torch.Tensor:
    """``(n, k)`` indices of each row's ``k`` most cosine-similar other rows (exact, blocked)."""
    table = torch.empty((len(unit), k), dtype=torch.long)
    block = max(1, NEIGHBOUR_BUDGET // len(unit))
    for start in tqdm(range(0, len(unit), block), desc="bebr neighbours", unit="block",
                      disable=None, leave=False):
        sims = unit[start:start + block] @ unit.T
        rows = torch.arange(len(sims))
        sims[rows, rows + start] = -torch.inf
        table[start:start + len(sims)] = torch.topk(sims, k, dim=1).indices
    return table


def train(model: RecurrentBinariser, x: torch.Tensor, unit: torch.Tensor, config: Any, norm2: float,
          generator: torch.Generator, desc: str, old: torch.Tensor | None = None) -> list[float]:
    """Train ``model`` in place; returns the mean loss of every epoch. ``old``: ``(n, m)``
    composites of an older binariser's codes of the same rows, for backward-compatible training.
    Ctrl-C propagates (the caller discards the half-trained model)."""
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    anchors = config.batch_size // 2
    batches = len(x) // anchors
    neighbours = neighbour_table(unit, min(config.neighbours, len(x) - 1))
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.epochs * batches)
    history: list[float] = []
    model.train()
    with tqdm(total=config.epochs * batches, desc=desc, unit="batch", disable=None) as bar:
        for _ in range(config.epochs):
            order = torch.randperm(len(x), generator=generator)
            total = 0.0
            for b in range(batches):
                first = order[b * anchors:(b + 1) * anchors]
                pick = torch.randint(neighbours.shape[1], (anchors,), generator=generator)
                rows = torch.cat([first, neighbours[first, pick]])
                loss = batch_loss(model, x[rows], unit[rows], config, norm2, None if old is None else old[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                schedule.step()
                total += float(loss.detach())
                bar.update()
            history.append(total / batches)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
    model.eval()
    return history
