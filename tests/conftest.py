"""Shared fixtures: fake plugin distributions on sys.path and paths to the shared data."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_fake_plugin(root: Path, name: str, source: str) -> Path:
    """Write a module ``name`` and a ``.dist-info`` whose entry point (group embedlab) loads it."""
    dist = f"embedlab-{name}"
    (root / f"{name}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[embedlab]\n{name} = {name}\n")
    return root


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path where tests drop fake plugin distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def fake_plugin(plugin_dir: Path):
    """``fake_plugin(name, source)`` installs a fake plugin distribution into ``plugin_dir``."""
    return lambda name, source: write_fake_plugin(plugin_dir, name, source)


@pytest.fixture
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"../shared/data not found beside the repository ({SHARED_DATA})"
    return SHARED_DATA
