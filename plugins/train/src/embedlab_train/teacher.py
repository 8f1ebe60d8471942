"""Scores of (training query, corpus document) pairs from any installed reranker, memoised for the
whole run: teachers for distillation losses (LG-ANNA's KL to a reranker's distribution) and guides
(GISTEmbed with a reranker guide). A reranker sees the pairs as a ranking to rescore, so any
``Reranker`` works (MaxSim, a cross-encoder...)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from embedlab.ranking import Ranking
from embedlab_train.data import TrainingSet


class RerankerScores:
    """``scores(data, queries, positions)``: the reranker's ``(len(queries), len(positions))`` score
    matrix for query indices ``queries`` and corpus positions ``positions``; every pair is scored once."""

    def __init__(self, reranker: Any) -> None:
        self.reranker = reranker
        self.memo: dict[tuple[int, int], float] = {}

    def scores(self, data: TrainingSet, queries: np.ndarray, positions: np.ndarray) -> torch.Tensor:
        missing: dict[int, list[int]] = {}
        for q in dict.fromkeys(queries.tolist()):
            todo = [p for p in dict.fromkeys(positions.tolist()) if (q, p) not in self.memo]
            if todo:
                missing[q] = todo
        if missing:
            self._score(data, missing)
        return torch.tensor([[self.memo[(q, p)] for p in positions.tolist()] for q in queries.tolist()],
                            dtype=torch.float64)

    def _score(self, data: TrainingSet, missing: dict[int, list[int]]) -> None:
        width = max(len(v) for v in missing.values())
        doc_ids = np.full((len(missing), width), "", dtype=object)
        for row, positions in enumerate(missing.values()):
            doc_ids[row, :len(positions)] = [data.corpus.ids[p] for p in positions]
        ranking = Ranking([data.queries.ids[q] for q in missing], doc_ids.astype(str),
                          np.zeros(doc_ids.shape, dtype=np.float32))
        reranked = self.reranker.rerank(ranking, data.queries, data.corpus)
        position = data.corpus.position
        index = {q: i for i, q in enumerate(data.queries.ids.tolist())}
        for qid, row_ids, row_scores in zip(reranked.query_ids.tolist(), reranked.doc_ids, reranked.scores):
            for doc_id, score in zip(row_ids.tolist(), row_scores.tolist()):
                if doc_id:
                    self.memo[(index[qid], position[doc_id])] = float(score)
