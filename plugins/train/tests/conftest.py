"""A tiny random BERT with MiniLM's tokenizer (trains in milliseconds per step), a small labelled
corpus, and an embedding cache private to the test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from embedlab_train.testing import TOPICS, tiny_bert

from embedlab.dataset import Corpus, Dataset, Queries

#: Settings every test encoder takes: one thread, short texts, no bars, nothing held out.
FAST = {"num_threads": 1, "show_progress": False, "max_length": 32, "train_batch_size": 8, "lr": 1e-3,
        "validation_fraction": 0.0, "warmup_ratio": 0.0, "checkpoint_dir": None, "batch_size": 16}


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    """EMBEDLAB_CACHE_DIR in a temporary folder: mining and ``checkpoint_dir="auto"`` stay inside."""
    root = tmp_path_factory.mktemp("embedlab-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer, 32-dim BERT with random (seeded) weights and all-MiniLM-L6-v2's tokenizer."""
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def make_dataset() -> Dataset:
    """24 topics x 2 documents; a train query per topic (both documents of another topic relevant,
    so a zero-shot model is wrong) and a test query paraphrasing it (same relevant topic)."""
    docs, texts = [], []
    for t, topic in enumerate(TOPICS):
        docs += [f"t{t}a", f"t{t}b"]
        texts += [f"def helper(): how to {topic} in python", f"example code that shows {topic} quickly"]
    queries = Queries([f"train{t}" for t in range(len(TOPICS))] + [f"test{t}" for t in range(len(TOPICS))],
                      [f"{topic}" for topic in TOPICS] + [f"how do i {topic}" for topic in TOPICS])
    shifted = [(t + 5) % len(TOPICS) for t in range(len(TOPICS))]  # words do not give the answer away
    qrels = {"train": {f"train{t}": {f"t{s}a": 1, f"t{s}b": 1} for t, s in enumerate(shifted)},
             "test": {f"test{t}": {f"t{s}a": 1} for t, s in enumerate(shifted)}}
    return Dataset("tiny-topics", Corpus(docs, texts), queries, qrels)


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture()
def fast(tiny_model) -> dict:
    return {**FAST, "model_path": str(tiny_model)}
