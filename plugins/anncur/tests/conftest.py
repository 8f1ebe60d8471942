"""A synthetic black-box scorer: a reranker that reads scores from a hidden query x item matrix.

Query ``"q<i>"`` and document ``"d<j>"`` score ``M[i, j]`` with ``M = A B^T + noise * N(0, 1)``
(``rank`` columns, all drawn from ``seed``). It is registered once as the reranker
``anncur-test-hidden`` so that the ``anncur`` encoder builds it from its ``scorer`` table.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
import pytest

import embedlab
from embedlab.components import Component
from embedlab.dataset import Corpus, Queries
from embedlab.ranking import Ranking
from embedlab.registry import ComponentSpec
from embedlab.rerank import document_positions, query_texts, reorder

HIDDEN = "anncur-test-hidden"


def hidden_matrix(n_queries: int, n_items: int, rank: int, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n_queries, rank)), rng.standard_normal((n_items, rank))
    return a @ b.T + noise * rng.standard_normal((n_queries, n_items))


class HiddenScorer(Component):
    """Scores from :func:`hidden_matrix`; counts the pairs it scored in ``calls``."""

    kind = "reranker"
    name = HIDDEN

    @attrs.frozen(kw_only=True)
    class Config:
        n_queries: int = 100
        n_items: int = 300
        rank: int = 5
        noise: float = 0.0
        seed: int = 0
        k: int | None = None

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        c = self.config
        self.matrix = hidden_matrix(c.n_queries, c.n_items, c.rank, c.noise, c.seed)
        self.calls = 0

    def rerank(self, ranking: Ranking, queries: Queries, corpus: Corpus) -> Ranking:
        head = ranking.truncate(self.config.k or ranking.k)
        rows = np.asarray([int(t[1:]) for t in query_texts(head, queries, self.name)])
        documents = corpus.documents()
        positions = document_positions(head.doc_ids, corpus, self.name)
        columns = np.vectorize(lambda p: int(documents[p][1:]) if p >= 0 else 0, otypes=[np.int64])(positions)
        self.calls += int((positions >= 0).sum())
        return reorder(head, self.matrix[rows[:, None], columns], keep_tail=False)


def _register() -> None:
    registry = embedlab.registry()
    if HIDDEN not in registry.names("reranker"):
        registry.add_spec(ComponentSpec("reranker", HIDDEN, HiddenScorer, "anncur-tests", "tests", "0"))


_register()


@pytest.fixture
def items() -> list[str]:
    return [f"d{j}" for j in range(300)]


@pytest.fixture
def pool() -> list[str]:
    """Anchor-query pool q0..q59; q60..q99 stay unseen (test queries)."""
    return [f"q{i}" for i in range(60)]


@pytest.fixture
def table():
    """``table(**params)``: the ``scorer`` table of the hidden-matrix scorer."""
    return lambda **params: {"name": HIDDEN, **params}


@pytest.fixture
def matrix():
    """The hidden matrix a scorer table describes (``matrix(table)``)."""
    defaults = attrs.asdict(HiddenScorer.Config())
    return lambda spec: hidden_matrix(**{k: v for k, v in {**defaults, **spec}.items() if k not in ("name", "k")})
