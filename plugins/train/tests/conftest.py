"""A tiny random BERT with MiniLM's tokenizer (trains in milliseconds per step), a small labelled
corpus, and an embedding cache private to the test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from embedlab_train.testing import tiny_bert, topics_dataset

from embedlab.dataset import Dataset

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


#: The dataset of these tests (the subprocess tests import it from here).
make_dataset = topics_dataset


@pytest.fixture(scope="session")
def dataset() -> Dataset:
    return make_dataset()


@pytest.fixture()
def fast(tiny_model) -> dict:
    return {**FAST, "model_path": str(tiny_model)}
