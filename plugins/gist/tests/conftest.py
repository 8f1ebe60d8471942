"""Tiny random BERTs (student and guide) with MiniLM's tokenizer; a private embedding cache."""

from __future__ import annotations

import pytest
from embedlab_train.testing import tiny_bert


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("embedlab-cache")))
        yield


@pytest.fixture(scope="session")
def student_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("student"), seed=0)


@pytest.fixture(scope="session")
def guide_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("guide"), seed=1)
