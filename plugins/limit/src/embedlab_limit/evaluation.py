"""Success measures of free embeddings, batched: ``scores`` is ``(batch, queries, documents)``.

Padded queries and documents (problems of different sizes share one batch) are excluded through
``pairs``, a boolean mask of the same shape that is True where both the query and the document exist.
"""

from __future__ import annotations

import torch


def top_k_accuracy(scores: torch.Tensor, relevant: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Per problem: the fraction of relevant documents found in their query's top-c, where c is the
    number of relevant documents of that query (LIMIT's ``evaluate_top_k_accuracy`` with k = c)."""
    counts = relevant.sum(-1)  # (batch, queries)
    depth = max(int(counts.max()), 1)
    masked = scores.masked_fill(~pairs, float("-inf"))
    top = masked.topk(depth, dim=-1).indices
    hits = relevant.gather(-1, top) & (torch.arange(depth) < counts.unsqueeze(-1))
    return hits.sum((1, 2)) / counts.sum(-1).clamp_min(1)


def row_margins(scores: torch.Tensor, relevant: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Per query: half the gap between its lowest relevant and its highest non-relevant score,
    ``(min_rel - max_nonrel) / 2``; positive exactly when every relevant document outranks every
    other. Padded queries get ``+inf`` (neutral for a minimum)."""
    lowest_relevant = scores.masked_fill(~(relevant & pairs), float("inf")).amin(-1)
    highest_other = scores.masked_fill(~(~relevant & pairs), float("-inf")).amax(-1)
    margins = (lowest_relevant - highest_other) / 2
    return margins.masked_fill(~pairs.any(-1), float("inf"))


def min_row_margin(scores: torch.Tensor, relevant: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Per problem: the smallest query margin (the set is separable when it is positive)."""
    return row_margins(scores, relevant, pairs).amin(-1)


def global_margin(scores: torch.Tensor, relevant: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Per problem: the margin with **one** threshold shared by every query, placed best:
    ``(lowest relevant score - highest other score) / 2`` over all pairs. Positive exactly when a
    single score threshold separates every relevant pair from every other pair."""
    lowest_relevant = scores.masked_fill(~(relevant & pairs), float("inf")).amin((1, 2))
    highest_other = scores.masked_fill(~(~relevant & pairs), float("-inf")).amax((1, 2))
    return (lowest_relevant - highest_other) / 2


def zero_margin(scores: torch.Tensor, relevant: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """Per problem: the retrieval margin m^rd of Bangachev et al. (threshold fixed at zero),
    ``min(lowest relevant score, -highest other score)``; positive exactly when every relevant pair
    scores above 0 and every other pair below 0."""
    lowest_relevant = scores.masked_fill(~(relevant & pairs), float("inf")).amin((1, 2))
    highest_other = scores.masked_fill(~(~relevant & pairs), float("-inf")).amax((1, 2))
    return torch.minimum(lowest_relevant, -highest_other)


#: Success margins by criterion name: the per-query ranking margin (LIMIT, the authors' code), one
#: shared threshold, and the threshold at zero (the paper's definition).
MARGINS = {"margin": min_row_margin, "global-margin": global_margin, "zero-margin": zero_margin}
