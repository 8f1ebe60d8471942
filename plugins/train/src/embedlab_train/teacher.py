"""Scores of (training query, corpus document) pairs from any installed reranker, memoised for the
whole run: teachers for distillation losses (LG-ANNA's KL to a reranker's distribution) and guides
(GISTEmbed with a reranker guide). A reranker sees the pairs as a ranking to rescore, so any
``Reranker`` works (MaxSim, a cross-encoder...)."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch

from embedlab.ranking import Ranking
from embedlab_train.data import TrainingSet


class RerankerScores:
    """``scores(data, queries, positions)``: the reranker's ``(len(queries), len(positions))`` score
    matrix for query indices ``queries`` and corpus positions ``positions``; ``rows(...)`` the scores
    of each query with its own positions; every pair is scored once (``prefetch`` scores many pairs
    in one reranker call before training)."""

    def __init__(self, reranker: Any) -> None:
        self.reranker = reranker
        self.memo: dict[tuple[int, int], float] = {}

    def scores(self, data: TrainingSet, queries: np.ndarray, positions: np.ndarray) -> torch.Tensor:
        columns = positions.tolist()
        self.prefetch(data, [(q, columns) for q in queries.tolist()])
        return torch.tensor([[self.memo[(q, p)] for p in columns] for q in queries.tolist()], dtype=torch.float64)

    def rows(self, data: TrainingSet, queries: np.ndarray, positions: np.ndarray) -> torch.Tensor:
        """``(B, C)`` scores of row-wise pairs: query ``queries[i]`` with each of ``positions[i]``
        (a query's own candidates rather than every query with every document)."""
        table = np.asarray(positions).tolist()
        self.prefetch(data, list(zip(queries.tolist(), table)))
        return torch.tensor([[self.memo[(q, p)] for p in row] for q, row in zip(queries.tolist(), table)],
                            dtype=torch.float64)

    def prefetch(self, data: TrainingSet, pairs: Iterable[tuple[int, Sequence[int]]]) -> None:
        """Score the pairs ``(query, each of positions)`` not memoised yet, in one reranker call."""
        missing: dict[int, dict[int, None]] = {}
        for q, positions in pairs:
            for p in positions:
                if (int(q), int(p)) not in self.memo:
                    missing.setdefault(int(q), {})[int(p)] = None
        if missing:
            self._score(data, {q: list(todo) for q, todo in missing.items()})

    def _score(self, data: TrainingSet, missing: dict[int, list[int]]) -> None:
        """Rerank the missing pairs as rankings of at most the reranker's ``k`` documents per query
        (a reranker scores only its top ``k``; deeper documents would get tail scores)."""
        width = max(len(v) for v in missing.values())
        depth = getattr(getattr(self.reranker, "config", None), "k", None) or width
        position = data.corpus.position
        index = {q: i for i, q in enumerate(data.queries.ids.tolist())}
        for start in range(0, width, depth):
            part = {q: v[start:start + depth] for q, v in missing.items() if v[start:start + depth]}
            doc_ids = np.full((len(part), max(len(v) for v in part.values())), "", dtype=object)
            for row, positions in enumerate(part.values()):
                doc_ids[row, :len(positions)] = [data.corpus.ids[p] for p in positions]
            ranking = Ranking([data.queries.ids[q] for q in part], doc_ids.astype(str),
                              np.zeros(doc_ids.shape, dtype=np.float32))
            reranked = self.reranker.rerank(ranking, data.queries, data.corpus)
            for qid, row_ids, row_scores in zip(reranked.query_ids.tolist(), reranked.doc_ids, reranked.scores):
                for doc_id, score in zip(row_ids.tolist(), row_scores.tolist()):
                    if doc_id:
                        self.memo[(index[qid], position[doc_id])] = float(score)
