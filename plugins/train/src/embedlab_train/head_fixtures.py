"""Pytest fixtures shared by the pooling-head plugins' tests (nvembed, mltp, miner): a tiny random BERT
with MiniLM's tokenizer, its head settings, the topics dataset and a private embedlab cache.
A plugin's tests/conftest.py imports them: ``from embedlab_train.head_fixtures import *``."""

from __future__ import annotations

import pytest

from embedlab_train.testing import head_settings, tiny_bert, topics_dataset

__all__ = ["dataset", "params", "private_cache", "tiny_model"]


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """EMBEDLAB_CACHE_DIR in a temporary folder (hidden states, training runs)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("embedlab-cache")))
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture()
def params(tiny_model) -> dict:
    return head_settings(tiny_model)


@pytest.fixture(scope="session")
def dataset():
    return topics_dataset()
