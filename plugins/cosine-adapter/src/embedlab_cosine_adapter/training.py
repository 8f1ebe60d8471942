"""Training the Cosine Adapter: binary cross-entropy of ``sigmoid(h(c; g(e_q)))`` against binary
relevance of the first stage's candidates, Adam on seeded query minibatches, early stopping on a
held-out share of the queries (the best epoch's weights are kept)."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping
from embedlab.training import holdout_split
from embedlab_cosine_adapter.mapping import WEIGHT_NAMES, init_weights, logits


@attrs.frozen(eq=False)
class TrainingData:
    """One candidate list per query: unit query embeddings, cosines, labels and a padding mask."""

    queries: torch.Tensor  # (n, d) float64
    cosines: torch.Tensor  # (n, k) float64, 0 at padding
    labels: torch.Tensor  # (n, k) float64 in {0, 1}
    mask: torch.Tensor  # (n, k) bool, False at padding

    def __len__(self) -> int:
        return int(self.queries.shape[0])

    def take(self, rows: torch.Tensor) -> TrainingData:
        return TrainingData(self.queries[rows], self.cosines[rows], self.labels[rows], self.mask[rows])


@attrs.frozen(eq=False)
class TrainingResult:
    """Best weights (numpy float64), per-epoch losses, and the held-out query rows."""

    weights: dict[str, np.ndarray]
    history: dict[str, list[float]]
    held_out: np.ndarray


def bce(weights: dict[str, torch.Tensor], data: TrainingData, family: str, mean: float,
        std: float) -> torch.Tensor:
    """Mean binary cross-entropy over the non-padding candidates."""
    h = logits(weights, family, data.queries, data.cosines, mean, std)
    return F.binary_cross_entropy_with_logits(h[data.mask], data.labels[data.mask])


def train(data: TrainingData, config: Any, mean: float, std: float, prior: float,
          desc: str = "cosine-adapter") -> TrainingResult:
    """Fit the network from a seeded start; Ctrl-C propagates (the caller keeps its old state).

    ``config`` supplies ``family``, ``hidden``, ``epochs``, ``lr``, ``weight_decay``, ``batch_size``,
    ``validation_fraction``, ``patience``, ``tol`` and ``seed``. Stops after ``patience`` epochs
    without a held-out loss improvement of ``tol``.
    """
    generator = torch.Generator().manual_seed(config.seed)
    train_rows, held_rows = holdout_split(torch.randperm(len(data), generator=generator), config.validation_fraction)
    fitting, held = data.take(train_rows), data.take(held_rows)
    weights = init_weights(data.queries.shape[1], config.hidden, config.family, prior, generator)
    for tensor in weights.values():
        tensor.requires_grad_(True)
    optimiser = torch.optim.AdamW(list(weights.values()), lr=config.lr, weight_decay=config.weight_decay)

    def held_loss() -> float:
        with torch.no_grad():
            return float(bce(weights, held, config.family, mean, std))

    def snapshot() -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in weights.items()}

    initial = held_loss()
    history: dict[str, list[float]] = {"initial_held_out": [initial], "train": [], "held_out": []}
    stopper = EarlyStopping(initial, snapshot(), config.patience, config.tol)
    with tqdm(total=config.epochs, desc=desc, unit="epoch", disable=None) as bar:
        for _ in range(config.epochs):
            order = torch.randperm(len(fitting), generator=generator)
            total = 0.0
            for start in range(0, len(fitting), config.batch_size):
                batch = fitting.take(order[start:start + config.batch_size])
                loss = bce(weights, batch, config.family, mean, std)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(batch)
            history["train"].append(total / len(fitting))
            history["held_out"].append(held_loss())
            bar.update()
            bar.set_postfix(train=f"{history['train'][-1]:.4f}", held_out=f"{history['held_out'][-1]:.4f}")
            if stopper.update(history["held_out"][-1], snapshot):
                break
    best = stopper.best_state
    return TrainingResult({k: best[k].numpy().copy() for k in WEIGHT_NAMES}, history, held_rows.numpy())
