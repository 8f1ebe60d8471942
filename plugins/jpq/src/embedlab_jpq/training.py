"""The JPQ training loop: centroids and the query map trained jointly with the pairwise ranking
loss against the live index.

Each step maps a batch of training queries (:class:`LinearQueryMap`), searches the *current*
centroids for each query's ``top_k`` documents (the live index: end-to-end negatives, refreshed
every step), appends the relevant documents that were not retrieved, and takes one Adam step with
:func:`embedlab_jpq.loss.pairwise_lambda_loss` on the centroids (learning rate ``lr``; unless
``train_centroids`` is off) and, when it is trainable, the query map (``query_lr``). Assignments
stay frozen (:class:`FrozenPQ`). Against :class:`FloatDocuments` (the float control) only the map
trains.

A seeded share of the training queries is held out (with ``holdout="documents"``, training also
drops the queries that share a relevant document with them); after every epoch their nDCG@10 on the live
index decides early stopping (``patience`` epochs without improvement), and the best centroids
seen (the initial ones included) are returned with the query map of the same epoch, so training
never ends worse on held-out queries than it started.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import attrs
import numpy as np
import torch
from tqdm.auto import tqdm

from embedlab.early_stopping import EarlyStopping
from embedlab.errors import InvalidInputError
from embedlab_jpq.loss import live_index_loss
from embedlab_jpq.query_map import LinearQueryMap
from embedlab_jpq.torch_pq import FloatDocuments, FrozenPQ


@attrs.frozen
class TrainingResult:
    """Best centroids (None for the float control) and query adapter (None when it is not trained);
    mean training loss of every epoch run; held-out nDCG@10 before training and after every epoch
    (empty when nothing is held out); the epoch whose state was kept."""

    centroids: np.ndarray | None
    adapter: np.ndarray | None
    losses: list[float]
    validation: list[float]
    best_epoch: int
    train_queries: int


def relevant_positions(query_ids: Sequence[str], qrels: Mapping[str, Mapping[str, int]],
                       doc_ids: Sequence[str]) -> list[list[int]]:
    """Per query, the corpus positions of its documents judged relevant (grade > 0) in ``qrels``;
    documents missing from ``doc_ids`` are ignored."""
    position = {doc_id: i for i, doc_id in enumerate(doc_ids)}
    return [sorted(position[d] for d, grade in qrels.get(q, {}).items() if grade > 0 and d in position)
            for q in query_ids]


def check_relevant(relevant: Sequence[Sequence[int]], n_queries: int, n_docs: int) -> list[list[int]]:
    """``relevant`` as lists of ints, one per query, each in ``[0, n_docs)``, or a clear error."""
    if len(relevant) != n_queries:
        raise InvalidInputError(f"jpq: relevant has {len(relevant)} entries but there are {n_queries} "
                                "queries; pass one list of relevant document positions per query")
    lists = []
    for i, row in enumerate(relevant):
        values = [int(p) for p in row]
        if any(p < 0 or p >= n_docs for p in values):
            raise InvalidInputError(f"jpq: relevant[{i}] = {values} holds a position outside the "
                                    f"{n_docs} documents [0, {n_docs})")
        lists.append(values)
    return lists


def ndcg_at_10(ranked: np.ndarray, relevant: Sequence[Sequence[int]]) -> float:
    """Mean binary nDCG@10 of ``(b, >=10)`` ranked positions."""
    gains = 1.0 / np.log2(np.arange(2, 12))
    values = []
    for row, wanted in zip(ranked[:, :10], relevant):
        wanted_set = set(wanted)
        dcg = sum(g for g, p in zip(gains, row) if p in wanted_set)
        values.append(dcg / gains[:min(10, len(wanted_set))].sum())
    return float(np.mean(values)) if values else 0.0


def split_queries(relevant: Sequence[Sequence[int]], fraction: float, holdout: str,
                  generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (train, held-out) query indices; nothing is held out when ``fraction`` is 0.

    ``holdout="queries"``: a random share of the queries. ``holdout="documents"``: the same share,
    and every remaining query sharing a relevant document with a held-out one is dropped from
    training, so validation measures queries whose relevant documents training never saw.
    """
    n = len(relevant)
    held = min(n - 1, math.ceil(n * fraction)) if fraction > 0 else 0
    order = torch.randperm(n, generator=generator).numpy()
    train, kept = np.sort(order[held:]), np.sort(order[:held])
    if holdout == "documents":
        unseen = {p for i in kept for p in relevant[i]}
        train = np.asarray([i for i in train if not unseen.intersection(relevant[i])], dtype=train.dtype)
        if not len(train):
            raise InvalidInputError("jpq: holdout='documents' left no training query (every query shares a "
                                    "relevant document with a held-out one); lower validation_fraction")
    return train, kept


def train_jpq(documents: FrozenPQ | FloatDocuments, query_map: LinearQueryMap, queries: torch.Tensor,
              relevant: list[list[int]], config: Any, generator: torch.Generator, *,
              train_centroids: bool = True, desc: str = "jpq") -> TrainingResult:
    """Train the centroids of ``documents`` (a :class:`FrozenPQ`, when ``train_centroids``) and
    ``query_map`` (when trainable) in place, ending with the best epoch's state, and return the
    record. ``queries`` are the encoder's (unmapped) vectors. With :class:`FloatDocuments` only the
    query map trains (the float control).

    ``config`` supplies ``lr``, ``query_lr``, ``epochs``, ``batch_size``, ``top_k``, ``lambda_cut``,
    ``temperature``, ``validation_fraction``, ``holdout``, ``patience`` and ``show_progress``. Ctrl-C
    propagates; the caller owns ``documents`` and ``query_map`` and discards them.
    """
    train_rows, held_rows = split_queries(relevant, config.validation_fraction, config.holdout, generator)
    held_relevant = [relevant[i] for i in held_rows]
    centroids = documents.centroids if train_centroids and isinstance(documents, FrozenPQ) else None

    def validate() -> list[float]:
        if not len(held_rows):
            return []
        with torch.no_grad():
            return [ndcg_at_10(documents.search(query_map(queries[held_rows]), 10).numpy(), held_relevant)]

    def snapshot() -> tuple[torch.Tensor | None, torch.Tensor]:
        return None if centroids is None else centroids.detach().clone(), query_map.weight.detach().clone()

    groups = [] if centroids is None else [{"params": [centroids], "lr": config.lr}]
    if query_map.trainable:
        groups.append({"params": [query_map.weight], "lr": config.query_lr})
    if not groups:
        raise InvalidInputError("jpq: nothing to train (no centroids and no query map)")
    optimiser = torch.optim.Adam(groups)
    batches = math.ceil(len(train_rows) / config.batch_size)
    losses: list[float] = []
    validation = validate()
    stopper = EarlyStopping(validation[0] if validation else None, snapshot(), config.patience, mode="max")
    disable = None if config.show_progress is None else not config.show_progress
    with tqdm(total=config.epochs * batches, desc=desc, unit="batch", disable=disable) as bar:
        for _ in range(config.epochs):
            order = train_rows[torch.randperm(len(train_rows), generator=generator).numpy()]
            total = 0.0
            for start in range(0, len(order), config.batch_size):
                rows = order[start:start + config.batch_size]
                loss = live_index_loss(documents, query_map(queries[rows]), [relevant[i] for i in rows],
                                       config.top_k, config.lambda_cut, config.temperature)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(rows)
                bar.update()
            losses.append(total / len(order))
            validation += validate()
            bar.set_postfix(loss=f"{losses[-1]:.4f}", **({"held_out_ndcg10": f"{validation[-1]:.4f}"}
                                                         if validation else {}))
            if stopper.update(validation[-1] if validation else None, snapshot):
                break
    best, best_epoch = stopper.best_state, stopper.best_epoch
    with torch.no_grad():
        if centroids is not None:
            centroids.copy_(best[0])
        query_map.weight.copy_(best[1])
    final = documents.centroids.detach().numpy().copy() if isinstance(documents, FrozenPQ) else None
    return TrainingResult(final, query_map.adapter(), losses, validation, best_epoch, len(train_rows))
