"""Shared fixtures: a 300-document python-stdlib slice, its MiniLM first stage and a seeded cache."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.datasets import python_stdlib
from embedlab.ranking import Ranking
from embedlab.testing import cached_documents, exact_first_stage, seeded_cache
from embedlab.threads import torch_threads

#: One intra-op thread, no progress bars: the encoder parameters every test reranker takes.
QUIET = {"num_threads": 1, "show_progress": False}


def pytest_configure(config):
    """Prompts longer than MiniLM's 256 tokens are truncated on purpose (the prompt test checks what)."""
    config.addinivalue_line("filterwarnings", r"ignore:.*longer than max_length=\d+ tokens and were truncated")


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
def cache(tmp_path_factory, dataset, encoder) -> EmbeddingCache:
    """A fresh cache holding the corpus embeddings under the key a pipeline's first stage writes."""
    return seeded_cache(tmp_path_factory.mktemp("e2rank-cache"), encoder, dataset.corpus)


@pytest.fixture(scope="session")
def doc_vectors(cache, encoder, dataset) -> np.ndarray:
    return cached_documents(cache, encoder, dataset.corpus)


@pytest.fixture(scope="session")
def test_ranking(dataset, encoder, doc_vectors) -> Ranking:
    return exact_first_stage(encoder, doc_vectors, dataset.corpus, dataset.split("test").queries, k=30, limit=12)


@pytest.fixture(scope="session")
def train_ranking(dataset, encoder, doc_vectors) -> Ranking:
    return exact_first_stage(encoder, doc_vectors, dataset.corpus, dataset.split("train").queries, k=30, limit=60)


@pytest.fixture(scope="session")
def make(cache):
    """An ``e2rank`` reranker with quiet encoder parameters and short prompts (``doc_words`` 15
    unless given), reading the seeded cache."""
    def build(**params):
        params = {"doc_words": 15, **params}
        reranker = embedlab.create("reranker", "e2rank", encoder_params=QUIET, **params)
        reranker.use_cache(cache)
        return reranker
    return build


@pytest.fixture(scope="session")
def quiet() -> dict:
    """The quiet encoder parameters (``QUIET``) for tests that build their own components."""
    return dict(QUIET)
