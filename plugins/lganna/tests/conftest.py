"""A private embedding cache and a table-driven teacher reranker for the tests."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from embedlab.components import Component
from embedlab.rerank import reorder


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("embedlab-cache")))
        yield


class TableTeacher(Component):
    """A reranker whose score of (query id, document id) is ``TABLE.get((q, d), default)``; counts
    the pairs it is asked to score."""

    kind = "reranker"
    name = "table-teacher"
    TABLE: dict[tuple[str, str], float] = {}
    calls: list[int] = []

    @attrs.frozen
    class Config:
        default: float = 0.0

    def rerank(self, ranking, queries, corpus):
        scores = np.array([[self.TABLE.get((q, d), self.config.default) if d else -np.inf for d in row]
                           for q, row in zip(ranking.query_ids.tolist(), ranking.doc_ids.tolist())])
        type(self).calls.append(int((ranking.doc_ids != "").sum()))
        return reorder(ranking, scores)


@pytest.fixture
def table_teacher() -> type[TableTeacher]:
    """The :class:`TableTeacher` reranker (a fixture: test modules of several plugins cannot import their conftest)."""
    return TableTeacher
