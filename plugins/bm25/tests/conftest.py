"""Real BEIR collections from ../shared/data beside the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedlab.datasets.beir import load_beir

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def cranfield():
    return load_beir(DATA / "cranfield" / "beir")


@pytest.fixture(scope="session")
def scifact():
    return load_beir(DATA / "scifact" / "beir")
