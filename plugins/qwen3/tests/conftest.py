"""A tiny random BERT with MiniLM's tokenizer, the tiny-topics dataset and a private embedding cache."""

from __future__ import annotations

import pytest
from embedlab_train.testing import TOPICS, tiny_bert

from embedlab.dataset import Corpus, Dataset, Queries


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("embedlab-cache")))
        yield


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden=32, layers=2)


@pytest.fixture(scope="session")
def topics() -> Dataset:
    """24 topics, two documents each; a train and a test query per topic, relevant to its own
    topic's documents."""
    docs, texts = [], []
    for t, topic in enumerate(TOPICS):
        docs += [f"t{t}a", f"t{t}b"]
        texts += [f"def helper(): how to {topic} in python", f"example code that shows {topic} quickly"]
    queries = Queries([f"train{t}" for t in range(len(TOPICS))] + [f"test{t}" for t in range(len(TOPICS))],
                      [topic for topic in TOPICS] + [f"how do i {topic}" for topic in TOPICS])
    qrels = {"train": {f"train{t}": {f"t{t}a": 1, f"t{t}b": 1} for t in range(len(TOPICS))},
             "test": {f"test{t}": {f"t{t}a": 1} for t in range(len(TOPICS))}}
    return Dataset("tiny-topics", Corpus(docs, texts), queries, qrels)
