"""Tiny seeded CTR data shared by the tests (a few thousand rows, small vocabularies)."""

from __future__ import annotations

from pathlib import Path

import pytest
from embedlab_tables import generate
from embedlab_tables.models import ModelConfig
from embedlab_tables.training import TableRun, TrainConfig

CRITEO_SAMPLE = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "criteo-sample" / "criteo_sample.txt"
VOCABS = (300, 50, 800, 20, 400, 7)


@pytest.fixture(scope="session")
def synthetic():
    return generate(rows=4000, vocab_sizes=VOCABS, seed=0)


@pytest.fixture(scope="session")
def splits(synthetic):
    return synthetic.data.split((0.8, 0.1, 0.1), seed=0)


def tiny_run(splits, *, epochs: int = 1, seed: int = 0, kind: str = "dlrm") -> TableRun:
    train, valid, test = splits
    return TableRun(train, valid, test, model=ModelConfig(kind=kind, dim=8, bottom=(16,), top=(16,), deep=(16,)),
                    training=TrainConfig(epochs=epochs, batch_size=256, lr=3e-3, evals_per_epoch=2), seed=seed)


@pytest.fixture()
def run(splits):
    return tiny_run(splits)


@pytest.fixture(scope="session")
def make_run(splits):
    """``make_run(epochs=..., seed=..., kind=...)``: a fresh tiny run on the shared splits."""
    return lambda **kwargs: tiny_run(splits, **kwargs)


@pytest.fixture(scope="session")
def criteo_sample() -> Path:
    return CRITEO_SAMPLE
