"""Every plugin of the repository declares its claims, every command parses, and the headline table
of docs/benchmarks.md is the one the claims generate."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from embedlab.claims import CLAIMS_FILE, Claim, generated_block, read_claims, render_markdown

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[2]
PROJECTS = sorted(p for p in [*REPO.glob("plugins/*"), *REPO.glob("contrib/embedlab-*")]
                  if (p / "pyproject.toml").is_file())
HOW = "see docs/plugin-authors.md, 'Declare your claims' (embedlab new-plugin writes an example)"


def package_of(project: Path) -> tuple[str, Path]:
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    (name, target), = meta["project"]["entry-points"]["embedlab"].items()
    return name, project / "src" / target.split(":")[0].split(".")[0]


def repository_claims() -> list[Claim]:
    """The core's claims, then each project's by entry-point name: the order `embedlab claims` lists them."""
    found = read_claims(REPO / "core" / "embedlab" / CLAIMS_FILE, "embedlab")
    for name, package in sorted(package_of(project) for project in PROJECTS):
        found += read_claims(package / CLAIMS_FILE, name)
    return found


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_every_plugin_ships_a_claims_file(project: Path) -> None:
    name, package = package_of(project)
    path = package / CLAIMS_FILE
    assert path.is_file(), f"{project.name}: no {path.relative_to(REPO)}; {HOW}"
    assert read_claims(path, name), f"{path}: no claim"
    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    shipped = meta.get("tool", {}).get("setuptools", {}).get("package-data", {}).get(package.name, [])
    assert CLAIMS_FILE in shipped, (f"{project.name}/pyproject.toml: add [tool.setuptools.package-data] "
                                    f'{package.name} = ["{CLAIMS_FILE}"] so the wheel ships the claims')


def test_every_command_parses() -> None:
    """One process parses every command (the scripts' imports are shared), as a user would check."""
    done = subprocess.run([sys.executable, "-m", "embedlab.cli", "claims", "--check", "--root", str(REPO)],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"checked {len(repository_claims())} commands" in done.stderr and ", 0 broken;" in done.stderr


def test_the_docs_headline_table_is_generated_from_the_claims() -> None:
    document = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    expected = render_markdown([c for c in repository_claims() if c.headline])
    assert generated_block(document) == expected, (
        "docs/benchmarks.md's headline table differs from the claims files: run "
        "`embedlab claims --markdown --write docs/benchmarks.md`")
