"""Held-out evaluation for early stopping: nDCG@10 of held-out *training* queries over a fixed pool
of documents (their judged positives, the first stages' top candidates for them, and a seeded random
sample of the corpus), encoded by the model being trained. Never the evaluated test split."""

from __future__ import annotations

from typing import Sequence

import attrs
import numpy as np
import torch

from embedlab_train.context import TrainingContext
from embedlab_train.data import TrainingSet
from embedlab_train.model import Student

#: First-stage candidates of each held-out query added to the pool.
POOL_DEPTH = 20


@attrs.frozen(eq=False)
class ValidationSet:
    """Held-out query indices, the pool's corpus positions and, per query, its relevant pool rows."""

    queries: np.ndarray
    pool: np.ndarray
    relevant: list[set[int]]

    @classmethod
    def build(cls, data: TrainingSet, held: np.ndarray, context: TrainingContext, size: int,
              seed: int) -> ValidationSet | None:
        """The pool for held-out queries ``held`` (None when nothing is held out)."""
        if not len(held):
            return None
        positions: set[int] = set()
        for q in held.tolist():
            positions |= data.judged[q]
        for candidates in context.rankings():
            for q in held.tolist():
                row = candidates.positions[q, :POOL_DEPTH]
                positions |= set(row[row >= 0].tolist())
        rng = np.random.default_rng([seed, 17])
        extra = rng.permutation(len(data.corpus))[:size]
        pool = np.asarray(sorted(positions | set(extra.tolist())), dtype=np.int64)
        row_of = {p: i for i, p in enumerate(pool.tolist())}
        relevant = [{row_of[p] for p in data.judged[q]} for q in held.tolist()]
        return cls(np.asarray(held, dtype=np.int64), pool, relevant)


def encode(model: Student, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    """Embeddings of ``texts`` without gradients, in length-sorted batches (input order kept)."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = torch.empty((len(texts), model.dim), device=model.device)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            out[torch.from_numpy(rows).to(model.device)] = model.embed([texts[i] for i in rows])
    return out


def ndcg_at_10(scores: torch.Tensor, relevant: list[set[int]]) -> float:
    """Mean binary nDCG@10 of each row's top 10 (ties: lower index first)."""
    gains = 1.0 / np.log2(np.arange(2, 12))
    top = torch.topk(scores, min(10, scores.shape[1]), dim=1).indices.cpu().numpy()
    values = []
    for row, wanted in zip(top, relevant):
        dcg = sum(g for g, p in zip(gains, row.tolist()) if p in wanted)
        values.append(dcg / gains[:min(10, len(wanted))].sum() if wanted else 0.0)
    return float(np.mean(values))


def evaluate(model: Student, data: TrainingSet, validation: ValidationSet, batch_size: int) -> float:
    """Held-out nDCG@10 with the model's current weights (eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    try:
        queries = encode(model, [data.queries.texts[q] for q in validation.queries.tolist()], batch_size)
        documents = encode(model, [data.documents[p] for p in validation.pool.tolist()], batch_size)
        queries = torch.nn.functional.normalize(queries, dim=1)
        documents = torch.nn.functional.normalize(documents, dim=1)
        return ndcg_at_10(queries @ documents.T, validation.relevant)
    finally:
        model.train(was_training)
