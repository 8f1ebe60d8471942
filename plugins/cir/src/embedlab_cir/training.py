"""The two training stages, each a contrastive loop with held-out early stopping.

Stage 1 aligns images with their captions (symmetric InfoNCE, in-batch negatives). Stage 2 trains
on (reference, instruction, target) triplets: the composed query's embedding against the target
images of the batch (InfoNCE). AdamW with linear warm-up and decay, the loss helpers and the
optimiser of embedlab-train, and the core's :class:`~embedlab.early_stopping.EarlyStopping` on
held-out training examples (Recall@1), keeping the best evaluation's weights.
"""

from __future__ import annotations

from typing import Callable

import attrs
import numpy as np
import torch
from embedlab_train.loop import adamw, lr_factor
from embedlab_train.losses import cross_entropy_rows
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping

#: ``embed(rows) -> (len(rows), dim)``: the two sides of a contrastive task over example rows.
Embed = Callable[[np.ndarray], torch.Tensor]


@attrs.frozen
class Task:
    """A contrastive task: query and document sides over ``n`` examples, ``train``/``held_out``
    example rows, and whether the loss is symmetric (stage 1) or query -> document (stage 2)."""

    name: str
    queries: Embed
    documents: Embed
    train: np.ndarray
    held_out: np.ndarray
    symmetric: bool


@attrs.frozen
class LoopSettings:
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    temperature: float
    warmup_ratio: float
    eval_every: int
    patience: int
    seed: int
    progress: bool = False


@attrs.define
class StageReport:
    """What one stage did: steps run, held-out Recall@1 before training and at its best, and the
    step the best was reached at (0: before training)."""

    steps: int = 0
    initial_recall: float | None = None
    best_recall: float | None = None
    best_step: int = 0
    history: list[list[float]] = attrs.field(factory=list)


def held_out_recall(task: Task, batch_size: int = 256) -> float | None:
    """Recall@1 of the held-out queries among the held-out documents (None when nothing is held out)."""
    rows = task.held_out
    if rows.size == 0:
        return None
    with torch.no_grad():
        queries = torch.cat([task.queries(rows[i:i + batch_size]) for i in range(0, rows.size, batch_size)])
        documents = torch.cat([task.documents(rows[i:i + batch_size]) for i in range(0, rows.size, batch_size)])
    best = (queries @ documents.T).argmax(dim=1)
    return float((best == torch.arange(rows.size)).float().mean())


def contrastive_loss(queries: torch.Tensor, documents: torch.Tensor, temperature: float,
                     symmetric: bool) -> torch.Tensor:
    """InfoNCE with in-batch negatives on normalised embeddings; both directions when symmetric."""
    logits = queries @ documents.T / temperature
    loss = cross_entropy_rows(logits).mean()
    if symmetric:
        loss = (loss + cross_entropy_rows(logits.T).mean()) / 2
    return loss


def run_stage(model: torch.nn.Module, task: Task, settings: LoopSettings) -> StageReport:
    """Train ``model`` on ``task`` for ``settings.steps`` steps (fewer when early stopping fires)
    and leave it with the best held-out weights."""
    report = StageReport()
    if settings.steps <= 0 or task.train.size < 2:
        return report
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    optimizer = adamw([{"params": decay, "weight_decay": settings.weight_decay},
                       {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}], settings.lr)
    warmup = int(settings.warmup_ratio * settings.steps)
    snapshot = lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}  # noqa: E731
    report.initial_recall = held_out_recall(task)
    stopper = EarlyStopping(report.initial_recall, snapshot(), patience=settings.patience, mode="max")
    rng = np.random.default_rng(settings.seed)
    batch = min(settings.batch_size, task.train.size)
    order = rng.permutation(task.train)
    cursor = 0
    bar = tqdm(range(settings.steps), desc=f"cir {task.name}", disable=not settings.progress, leave=False)
    for step in bar:
        if cursor + batch > order.size:
            order, cursor = rng.permutation(task.train), 0
        rows = order[cursor:cursor + batch]
        cursor += batch
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * lr_factor(step, settings.steps, warmup)
        loss = contrastive_loss(task.queries(rows), task.documents(rows), settings.temperature, task.symmetric)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        report.steps = step + 1
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % settings.eval_every == 0 or step + 1 == settings.steps:
            model.eval()
            recall = held_out_recall(task)
            model.train()
            if recall is not None:
                report.history.append([step + 1, recall])
            stop = stopper.update(recall, snapshot)
            if stopper.best_epoch == stopper.epoch:
                report.best_step = step + 1
            if stop:
                break
    model.load_state_dict(stopper.best_state)
    model.eval()
    report.best_recall = stopper.best_value
    return report
