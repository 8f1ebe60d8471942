"""Shared fixtures: small encoders (one torch thread, no progress bars) with a short window."""

from __future__ import annotations

import pytest

#: A window of 32 tokens makes "long" inputs of a few dozen words, so every method runs in milliseconds.
SMALL = {"original_length": 32, "target_length": 128, "num_threads": 1, "show_progress": False}


@pytest.fixture(scope="session")
def small() -> dict:
    return dict(SMALL)
