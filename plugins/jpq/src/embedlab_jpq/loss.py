"""JPQ's ranking-oriented pairwise loss over a query's retrieved list (Zhan et al., CIKM 2021, §4.2).

For one query the list is the top-K documents of the live index followed by any relevant document
that was not retrieved. Ranks are 1-based list positions and ``w(rank) = 1 / rank``, set to 0
beyond ``lambda_cut`` (0 disables the cut). Every (relevant r, irrelevant i) pair contributes

    log(1 + exp(s_i - s_r)) * |w(rank_i) - w(rank_r)|

and the query's loss is the mean over all its pairs; the batch loss is the mean over queries.

Scale matters: the official code scores with unnormalised STAR embeddings, whose score gaps are
several units, so ``log(1 + exp(.))`` works in its non-linear range (well-ordered pairs stop
pulling). Cosine-scale embeddings such as MiniLM have gaps of ~0.01-0.1, where the term is nearly
linear and every pair pulls equally; the trainer therefore divides scores by a ``temperature``
(default 0.05) first. Because the rank weights follow the live list, the loss *value* measured on
fresh lists can rise while ranking improves (a relevant document moving into the top ranks creates
heavier pairs); compare losses on fixed candidate lists.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F


def candidate_lists(retrieved: torch.Tensor, relevant: Sequence[Sequence[int]]) -> tuple[torch.Tensor, ...]:
    """Pad every query's list ``retrieved[i] + missing relevant`` to one width.

    Returns ``positions`` ``(b, l)`` (padding repeats position 0), ``labels`` (relevant),
    ``valid`` (not padding), all ``(b, l)``.
    """
    lists, flags = [], []
    for row, wanted in zip(retrieved.tolist(), relevant):
        wanted_set, row_set = set(wanted), set(row)
        missing = [p for p in dict.fromkeys(wanted) if p not in row_set]
        lists.append(row + missing)
        flags.append([p in wanted_set for p in row] + [True] * len(missing))
    width = max(len(row) for row in lists)
    positions = torch.zeros((len(lists), width), dtype=torch.long)
    labels = torch.zeros((len(lists), width), dtype=torch.bool)
    valid = torch.zeros((len(lists), width), dtype=torch.bool)
    for i, (row, flag) in enumerate(zip(lists, flags)):
        positions[i, :len(row)] = torch.tensor(row)
        labels[i, :len(row)] = torch.tensor(flag)
        valid[i, :len(row)] = True
    return positions, labels, valid


def pairwise_lambda_loss(scores: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor,
                         lambda_cut: int) -> torch.Tensor:
    """Mean JPQ pairwise loss of ``(b, l)`` candidate ``scores`` (see the module docstring).
    Queries without a relevant candidate must not be passed."""
    ranks = torch.arange(1, scores.shape[1] + 1, dtype=scores.dtype).expand_as(scores)
    weights = 1.0 / ranks
    if lambda_cut > 0:
        weights = weights * (ranks <= lambda_cut)
    relevant = labels & valid
    irrelevant = ~labels & valid
    pairs = relevant[:, :, None] & irrelevant[:, None, :]  # (b, r, i)
    difference = scores[:, None, :] - scores[:, :, None]  # s_i - s_r
    pair_weights = (weights[:, None, :] - weights[:, :, None]).abs()
    losses = (F.softplus(difference) * pair_weights * pairs).sum(dim=(1, 2))
    counts = pairs.sum(dim=(1, 2)).clamp(min=1)
    return (losses / counts).mean()


def live_index_loss(documents: Any, queries: torch.Tensor, relevant: Sequence[Sequence[int]], top_k: int,
                    lambda_cut: int, temperature: float) -> torch.Tensor:
    """JPQ's loss of a batch of (already mapped) ``queries``: search the current ``documents``
    (:class:`embedlab_jpq.torch_pq.FrozenPQ`, or :class:`~embedlab_jpq.torch_pq.FloatDocuments` for
    the float control) for each query's ``top_k`` (end-to-end negatives), append the relevant
    documents not retrieved, score the lists with gradients (queries and, for PQ, centroids) and
    apply :func:`pairwise_lambda_loss` to the scores divided by ``temperature``."""
    retrieved = documents.search(queries.detach(), top_k)
    positions, labels, valid = candidate_lists(retrieved, relevant)
    scores = documents.candidate_scores(queries, positions) / temperature
    return pairwise_lambda_loss(scores, labels, valid, lambda_cut)
