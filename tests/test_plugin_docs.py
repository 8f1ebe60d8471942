"""docs/plugin-authors.md stays true: its excerpts are in the code ``embedlab new-plugin`` generates,
and its plugin-declared kind example loads and runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import embedlab
from embedlab import _builtin
from embedlab.plugins import PluginHost
from embedlab.scaffold import render_plugin

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugin-authors.md"
BLOCK = re.compile(r"<!-- (excerpt of kinds/|example: )(?P<what>[\w/]+) -->\n```python\n(?P<code>.*?)```", re.S)


def blocks(prefix: str) -> dict[str, str]:
    found = {m["what"]: m["code"] for m in BLOCK.finditer(DOC.read_text()) if m[1] == prefix}
    assert found, f"no '{prefix}' blocks in {DOC}"
    return found


EXCERPTS = blocks("excerpt of kinds/")


def test_every_kind_with_a_worked_example_has_an_excerpt() -> None:
    assert set(EXCERPTS) == {"encoder", "index", "reranker", "metric", "dataset"}


@pytest.mark.parametrize("kind", sorted(EXCERPTS))
def test_excerpts_are_lines_of_the_generated_code(tmp_path, kind: str) -> None:
    project = render_plugin("my-method", tmp_path / "p", kind=kind)
    lines = set((project / "src" / "embedlab_my_method" / f"{kind}.py").read_text().splitlines())
    missing = [line for line in EXCERPTS[kind].splitlines() if line.strip() != "..." and line not in lines]
    assert not missing, f"docs/plugin-authors.md's {kind} excerpt no longer matches the template: {missing}"


def test_the_plugin_declared_kind_example_works_as_written(fake_plugin, monkeypatch) -> None:
    examples = blocks("example: ")
    for what in ("tokenizers/embedlab_tokenizers", "trigrams/embedlab_trigrams"):
        name, module = what.split("/")
        fake_plugin(name, examples[what], distribution=f"embedlab-{name}", module=module)
    host = PluginHost()
    host.load_plugin(_builtin, "embedlab", "embedlab", "0")
    host.load_entry_points()
    statuses = {p.name: (p.status, p.error, p.kinds) for p in host.plugins if p.name in ("tokenizers", "trigrams")}
    assert statuses == {"tokenizers": ("loaded", "", ["tokenizer"]), "trigrams": ("loaded", "", [])}
    monkeypatch.setattr(embedlab, "_host", host)
    exec(compile(examples["usage"], str(DOC), "exec"), {})
