"""Shared fixtures: a 300-document python-stdlib slice, its exact MiniLM first stage and a seeded cache."""

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
    cache = EmbeddingCache(tmp_path_factory.mktemp("dime-cache"))
    corpus = dataset.corpus
    cache.get_or_compute(cache.key(encoder, "documents", corpus.content_hash),
                         lambda: encoder.encode_documents(corpus.documents()))
    return cache


@pytest.fixture(scope="session")
def doc_vectors(cache, encoder, dataset) -> np.ndarray:
    key = cache.key(encoder, "documents", dataset.corpus.content_hash)
    return cache.get_or_compute(key, lambda: None).embeddings


def first_stage(dataset, encoder, docs, split: str, k: int = 30, limit: int | None = None) -> Ranking:
    """Exact MiniLM top-``k`` of the split's queries (the first ``limit`` of them)."""
    corpus, queries = dataset.corpus, dataset.split(split).queries
    ids = queries.ids[:limit]
    sims = encoder.encode_queries(list(queries.texts[:limit])) @ docs.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return Ranking(ids, corpus.ids[top], np.take_along_axis(sims, top, axis=1))


@pytest.fixture(scope="session")
def test_ranking(dataset, encoder, doc_vectors) -> Ranking:
    return first_stage(dataset, encoder, doc_vectors, "test", limit=40)


@pytest.fixture(scope="session")
def train_ranking(dataset, encoder, doc_vectors) -> Ranking:
    return first_stage(dataset, encoder, doc_vectors, "train", limit=80)


@pytest.fixture(scope="session")
def make(cache):
    """A ``dime`` reranker with quiet encoder parameters, reading the seeded cache."""
    def build(**params):
        reranker = embedlab.create("reranker", "dime", encoder_params=QUIET, num_threads=1, **params)
        reranker.use_cache(cache)
        return reranker
    return build


@pytest.fixture(scope="session")
def quiet() -> dict:
    """The quiet encoder parameters (``QUIET``) for tests that build their own components."""
    return dict(QUIET)
