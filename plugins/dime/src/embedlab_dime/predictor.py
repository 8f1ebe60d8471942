"""The "Learning to Select" predictor: an MLP from a query embedding to per-dimension importance.

Reconstructed from the paper's abstract (Wu, Zhang, Nie, 2026; the full text was not available):
the target of each training query is the softmax of its oracle importance (Oracle-DIME
correlations) at temperature ``T``; the MLP ``D -> hidden (ReLU) -> D`` is trained with the KL
divergence between that target and the softmax of its output. At inference the mask keeps the
top dimensions of the MLP output, so no pseudo-relevance feedback round trip is needed.

Adam on seeded minibatches; a seeded held-out part of the queries decides early stopping (no
improvement by ``tol`` for ``patience`` epochs) and the best epoch's weights are returned.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping
from embedlab.training import holdout_split

#: Names of the weight arrays, in :func:`predict` order.
WEIGHTS = ("w1", "b1", "w2", "b2")


def predict(weights: dict[str, np.ndarray], queries: np.ndarray) -> np.ndarray:
    """Importance logits ``(n, D)`` of float32 query vectors, in numpy."""
    hidden = np.maximum(queries @ weights["w1"].T + weights["b1"], 0)
    return (hidden @ weights["w2"].T + weights["b2"]).astype(np.float32)


def _network(dim: int, hidden: int) -> torch.nn.Sequential:
    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, dim))


def _loss(network: torch.nn.Module, queries: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(network(queries))), averaged over queries."""
    return F.kl_div(F.log_softmax(network(queries), dim=1), targets, reduction="batchmean")


def train_predictor(queries: np.ndarray, oracle: np.ndarray, config: Any,
                    desc: str = "dime predictor") -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    """Fit the MLP on ``(n, D)`` query vectors and their ``(n, D)`` oracle importances.

    Returns the best epoch's weights (numpy, see :func:`predict`) and the loss history. With a
    ``validation_fraction`` too small to hold out a query the training loss is monitored. Ctrl-C
    propagates: the caller keeps its previous predictor.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    x = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    targets = torch.softmax(torch.from_numpy(np.asarray(oracle, dtype=np.float32)) / config.temperature, dim=1)
    train_rows, held_rows = holdout_split(torch.randperm(len(x), generator=generator), config.validation_fraction)
    network = _network(x.shape[1], config.hidden)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: dict[str, list[float]] = {"train": [], "held_out": []}
    with torch.no_grad():
        initial = float(_loss(network, x[held_rows], targets[held_rows]))
    history["initial_held_out"] = [initial]
    stopper = EarlyStopping(initial, copy.deepcopy(network.state_dict()), config.patience, config.tol)
    with tqdm(total=config.epochs, desc=desc, unit="epoch", disable=None) as bar:
        for _ in range(config.epochs):
            network.train()
            order = train_rows[torch.randperm(len(train_rows), generator=generator)]
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                rows = order[start:start + config.batch_size]
                loss = _loss(network, x[rows], targets[rows])
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(rows)
            with torch.no_grad():
                held_loss = float(_loss(network, x[held_rows], targets[held_rows]))
            history["train"].append(total / len(order))
            history["held_out"].append(held_loss)
            bar.update()
            bar.set_postfix(train=f"{history['train'][-1]:.4f}", held_out=f"{held_loss:.4f}")
            if stopper.update(held_loss, lambda: copy.deepcopy(network.state_dict())):
                break
    best = stopper.best_state
    layers = {"w1": best["0.weight"], "b1": best["0.bias"], "w2": best["2.weight"], "b2": best["2.bias"]}
    return {k: v.numpy().astype(np.float32) for k, v in layers.items()}, history
