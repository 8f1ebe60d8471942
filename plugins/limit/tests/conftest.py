"""The published LIMIT-small files in ../shared/data beside the repository root."""

from __future__ import annotations

from pathlib import Path

import pytest

LIMIT_SMALL = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "limit-small"


@pytest.fixture(scope="session")
def limit_small_dir() -> Path:
    return LIMIT_SMALL.resolve()
