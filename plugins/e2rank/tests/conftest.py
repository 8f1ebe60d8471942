"""Shared fixtures: a 300-document python-stdlib slice, its MiniLM first stage and a seeded cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.datasets import python_stdlib
from embedlab.ranking import Ranking

#: One intra-op thread, no progress bars: the encoder parameters every test reranker takes.
QUIET = {"num_threads": 1, "show_progress": False}


def pytest_configure(config):
    """Prompts longer than MiniLM's 256 tokens are truncated on purpose (the prompt test checks what)."""
    config.addinivalue_line("filterwarnings", r"ignore:.*longer than max_length=\d+ tokens and were truncated")


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def dataset():
    return python_stdlib(limit=300)


@pytest.fixture(scope="session")
def encoder():
    return embedlab.create("encoder", "minilm", **QUIET)


@pytest.fixture(scope="session")
def cache(tmp_path_factory, dataset, encoder) -> EmbeddingCache:
    """A fresh cache holding the corpus embeddings under the key a pipeline's first stage writes."""
    cache = EmbeddingCache(tmp_path_factory.mktemp("e2rank-cache"))
    corpus = dataset.corpus
    cache.get_or_compute(cache.key(encoder, "documents", corpus.content_hash),
                         lambda: encoder.encode_documents(corpus.documents()))
    return cache


def first_stage(dataset, encoder, cache, split: str, k: int = 30, limit: int | None = None) -> Ranking:
    """Exact MiniLM top-``k`` of the split's queries (the first ``limit`` of them)."""
    corpus, queries = dataset.corpus, dataset.split(split).queries
    docs = cache.get_or_compute(cache.key(encoder, "documents", corpus.content_hash), lambda: None).embeddings
    ids = queries.ids[:limit]
    sims = encoder.encode_queries(list(queries.texts[:limit])) @ docs.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return Ranking(ids, corpus.ids[top], np.take_along_axis(sims, top, axis=1))


@pytest.fixture(scope="session")
def test_ranking(dataset, encoder, cache) -> Ranking:
    return first_stage(dataset, encoder, cache, "test", limit=12)


@pytest.fixture(scope="session")
def train_ranking(dataset, encoder, cache) -> Ranking:
    return first_stage(dataset, encoder, cache, "train", limit=60)


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
