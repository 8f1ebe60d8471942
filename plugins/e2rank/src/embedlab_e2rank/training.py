"""E2Rank's Stage II objective on a query-side linear adapter over a frozen encoder.

The paper fine-tunes the whole LLM encoder with ``L = InfoNCE + lambda * RankNet``. Here the encoder
stays frozen and only a ``d x d`` matrix ``W`` (initialised to the identity) is trained; it maps
every query-side embedding ``x`` to ``normalize(W x)``. Per training list (one query, its best
judged positive first, then other judged documents and hard negatives):

* InfoNCE (temperature ``temperature``, paper 0.03) of the adapted *plain query* embedding: the
  best positive against the list's non-relevant documents;
* RankNet (temperature ``ranknet_temperature``, paper 0.1) of the adapted *listwise prompt*
  embedding: ``log(1 + exp((s_k - s_j) / t))`` averaged over every pair with ``rel_j > rel_k``.

Adam on seeded minibatches; training stops when the held-out lists' loss has not improved by
``tol`` for ``patience`` epochs, and the best epoch's adapter is returned.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping
from embedlab.training import holdout_split


@attrs.frozen(eq=False)
class TrainingLists:
    """Unit-norm embeddings of one training list per query (``n`` lists of ``m`` documents)."""

    queries: torch.Tensor  # (n, d) plain query embeddings
    prompts: torch.Tensor  # (n, d) listwise prompt embeddings
    documents: torch.Tensor  # (n, m, d) the list's documents, best positive first
    relevance: torch.Tensor  # (n, m) graded labels; 0 non-relevant
    mask: torch.Tensor  # (n, m) False for padding

    def __len__(self) -> int:
        return int(self.queries.shape[0])

    def take(self, rows: torch.Tensor) -> TrainingLists:
        return TrainingLists(self.queries[rows], self.prompts[rows], self.documents[rows],
                             self.relevance[rows], self.mask[rows])


def adapt(weight: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
    """``normalize(vectors @ weight.T)``: the adapter applied to query-side embeddings."""
    return F.normalize(vectors @ weight.T, dim=-1)


def e2rank_loss(weight: torch.Tensor, lists: TrainingLists, config: Any) -> torch.Tensor:
    """``InfoNCE(query) + ranknet_weight * RankNet(prompt)`` averaged over the lists."""
    query_scores = torch.einsum("nd,nmd->nm", adapt(weight, lists.queries), lists.documents)
    rel = lists.relevance
    keep = lists.mask & ((rel == 0) | (torch.arange(rel.shape[1]) == 0))
    logits = (query_scores / config.temperature).masked_fill(~keep, float("-inf"))
    info_nce = F.cross_entropy(logits, torch.zeros(len(rel), dtype=torch.long))
    prompt_scores = torch.einsum("nd,nmd->nm", adapt(weight, lists.prompts), lists.documents)
    diff = (prompt_scores[:, :, None] - prompt_scores[:, None, :]) / config.ranknet_temperature
    pairs = (rel[:, :, None] > rel[:, None, :]) & lists.mask[:, :, None] & lists.mask[:, None, :]
    ranknet = F.softplus(-diff[pairs]).mean() if bool(pairs.any()) else diff.sum() * 0.0
    return info_nce + config.ranknet_weight * ranknet


def train_adapter(lists: TrainingLists, config: Any, desc: str = "e2rank adapter") -> tuple[torch.Tensor, dict]:
    """Fit ``W`` from the identity; returns the best adapter and the loss history.

    With a ``validation_fraction`` too small to hold out a list, the training loss is monitored.
    Ctrl-C propagates; the caller keeps its previous adapter.
    """
    generator = torch.Generator().manual_seed(config.seed)
    train_rows, held_rows = holdout_split(torch.randperm(len(lists), generator=generator), config.validation_fraction)
    train, held = lists.take(train_rows), lists.take(held_rows)
    weight = torch.eye(lists.queries.shape[1], requires_grad=True)
    optimiser = torch.optim.Adam([weight], lr=config.lr)
    history: dict[str, list[float]] = {"train": [], "held_out": []}
    with torch.no_grad():
        initial = float(e2rank_loss(weight, held, config))
    history["initial_held_out"] = [initial]
    stopper = EarlyStopping(initial, copy.deepcopy(weight.detach()), config.patience, config.tol)
    with tqdm(total=config.epochs, desc=desc, unit="epoch", disable=None) as bar:
        for _ in range(config.epochs):
            order = torch.randperm(len(train), generator=generator)
            total = 0.0
            for start in range(0, len(train), config.batch_size):
                loss = e2rank_loss(weight, train.take(order[start:start + config.batch_size]), config)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(order[start:start + config.batch_size])
            with torch.no_grad():
                held_loss = float(e2rank_loss(weight, held, config))
            history["train"].append(total / len(train))
            history["held_out"].append(held_loss)
            bar.update()
            bar.set_postfix(train=f"{history['train'][-1]:.4f}", held_out=f"{held_loss:.4f}")
            if stopper.update(held_loss, lambda: copy.deepcopy(weight.detach())):
                break
    return stopper.best_state, history
