"""A tiny random BERT with MiniLM's tokenizer and a private embedlab cache (embedlab-train's
shared head fixtures), and a small generated aspect task."""

import pytest
from embedlab_aspects import people
from embedlab_train.head_fixtures import params, private_cache, tiny_model  # noqa: F401


@pytest.fixture(scope="session")
def task():
    return people(documents=60, seed=1)
