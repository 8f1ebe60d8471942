"""Shared fixtures: a 300-document python-stdlib slice, its MiniLM first stage and a fitted adapter."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.datasets import python_stdlib
from embedlab.ranking import Ranking
from embedlab.threads import torch_threads

#: One intra-op thread, no progress bars, 128 tokens (half the encoding time): the test encoder.
QUIET = {"num_threads": 1, "show_progress": False, "max_length": 128}
#: Small, fast training settings used by every fitted adapter in the tests.
FAST = {"candidates": 20, "epochs": 40, "patience": 5, "num_threads": 1, "encoder_params": QUIET}


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def dataset():
    return python_stdlib(limit=300)


@pytest.fixture(scope="session")
def encoder():
    return embedlab.create("encoder", "minilm", **QUIET)


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> EmbeddingCache:
    return EmbeddingCache(tmp_path_factory.mktemp("cosine-adapter-cache"))


@pytest.fixture(scope="session")
def make():
    """Builds a ``CosineAdapter`` with the fast test settings (``FAST``) overridden by keywords."""
    def build(**params):
        return embedlab.create("reranker", "cosine-adapter", **{**FAST, **params})
    return build


@pytest.fixture(scope="session")
def fitted(dataset, cache):
    """An adapter fitted end to end: its own first stage (encoder + exact search) on the train split."""
    adapter = embedlab.create("reranker", "cosine-adapter", **FAST)
    adapter.use_cache(cache)
    return adapter.fit(dataset)


def search(adapter, dataset, split: str, k: int = 20) -> tuple[Ranking, np.ndarray]:
    """The adapter encoder's exact cosine top-k for a split, and the query embeddings."""
    part = dataset.split(split)
    ranking = adapter.first_stage(part.queries, dataset.corpus).truncate(k)
    return ranking, adapter.query_embeddings(ranking, part.queries)


@pytest.fixture(scope="session")
def test_run(fitted, dataset):
    return search(fitted, dataset, "test")


@pytest.fixture(scope="session")
def train_run(fitted, dataset):
    return search(fitted, dataset, "train")
