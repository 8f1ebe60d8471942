"""Exact scores of a black-box scorer (any embedlab ``Reranker``) for query x document pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm.auto import tqdm

from embedlab.dataset import Corpus, Queries
from embedlab.errors import InvalidInputError
from embedlab.ranking import Ranking
from embedlab.rerank import document_positions


def candidates_per_call(scorer: Any, n_documents: int) -> int:
    """Documents handed to one ``rerank`` call: all of them, or the scorer's ``config.k`` when it
    reranks only that many (MaxSim's ``k``), so that every candidate gets an exact score."""
    k = getattr(getattr(scorer, "config", None), "k", None)
    return min(n_documents, k) if isinstance(k, int) and not isinstance(k, bool) and k > 0 else n_documents


def score_all(scorer: Any, queries: Queries, corpus: Corpus, *, queries_per_call: int = 16,
              show_progress: bool = False, desc: str = "anncur scoring") -> np.ndarray:
    """``(len(queries), len(corpus))`` float64 scores of every query for every document.

    Each call reranks a block of queries whose candidates are a block of documents, then reads the
    scores back by document id. That is ``len(queries) * len(corpus)`` scorer calls (pairs).
    Raises ``InvalidInputError`` when the scorer leaves a candidate unscored (non-finite score or
    missing from its output).
    """
    n_q, n_d = len(queries), len(corpus)
    width = candidates_per_call(scorer, n_d)
    out = np.full((n_q, n_d), np.nan)
    with tqdm(total=n_q * n_d, desc=desc, unit="pair", unit_scale=True, disable=not show_progress) as bar:
        for q0 in range(0, n_q, queries_per_call):
            block = Queries(queries.ids[q0:q0 + queries_per_call], queries.texts[q0:q0 + queries_per_call])
            for d0 in range(0, n_d, width):
                ids = corpus.ids[d0:d0 + width]
                ranking = Ranking(block.ids, np.broadcast_to(ids, (len(block), ids.size)),
                                  np.zeros((len(block), ids.size)))
                _store(out[q0:q0 + len(block)], scorer.rerank(ranking, block, corpus), block, corpus,
                       d0, d0 + ids.size, scorer)
                bar.update(len(block) * ids.size)
    return out


def _store(out: np.ndarray, result: Ranking, block: Queries, corpus: Corpus, start: int, end: int,
           scorer: Any) -> None:
    owner = f"anncur scorer {getattr(scorer, 'name', type(scorer).__name__)!r}"
    if not np.array_equal(result.query_ids, block.ids):
        raise InvalidInputError(f"{owner}: returned queries {result.query_ids[:3]}... for "
                                f"{block.ids[:3]}...; a reranker must keep the query order")
    positions = document_positions(result.doc_ids, corpus, owner)
    keep = (positions >= start) & (positions < end) & np.isfinite(result.scores)
    rows = np.broadcast_to(np.arange(len(block))[:, None], positions.shape)
    out[rows[keep], positions[keep]] = result.scores[keep]
    missing = np.isnan(out[:, start:end])
    if missing.any():
        raise InvalidInputError(f"{owner}: left {int(missing.sum())} of {missing.size} candidate pairs "
                                "unscored; use a scorer that scores every candidate it is given "
                                "(for maxsim: k at least the candidates per call)")
