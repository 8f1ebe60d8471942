"""Shared fixtures: fake plugin distributions on sys.path and paths to the shared data."""

from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def write_fake_plugin(root: Path, name: str, source: str, *, distribution: str | None = None,
                      module: str | None = None, version: str = "1.2.3") -> Path:
    """Write a module and a ``.dist-info`` whose entry point ``name`` (group embedlab) loads it.

    The distribution defaults to ``embedlab-NAME`` and the module to ``NAME``; give others to install
    two distributions with the same entry-point name."""
    dist = distribution or f"embedlab-{name}"
    module = module or name
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    sys.modules.pop(module, None)  # a test's module of the same name must not be reused
    importlib.invalidate_caches()
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[embedlab]\n{name} = {module}\n")
    return root


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory on sys.path where tests drop fake plugin distributions."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


@pytest.fixture
def fake_plugin(plugin_dir: Path, monkeypatch: pytest.MonkeyPatch):
    """``fake_plugin(name, source, **kwargs)`` installs a fake plugin distribution into ``plugin_dir``
    (see :func:`write_fake_plugin`); ``site=DIR`` installs it into ``DIR``, put first on sys.path."""

    def install(name: str, source: str, *, site: Path | None = None, **kwargs) -> Path:
        if site is not None:
            monkeypatch.syspath_prepend(str(site.mkdir(parents=True, exist_ok=True) or site))
        return write_fake_plugin(site or plugin_dir, name, source, **kwargs)

    return install


@pytest.fixture
def shared_data() -> Path:
    assert SHARED_DATA.is_dir(), f"../shared/data not found beside the repository ({SHARED_DATA})"
    return SHARED_DATA
