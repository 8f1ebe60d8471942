"""The generated python-stdlib dataset: extraction rules on synthetic sources, a fake stdlib tree,
and the real build (determinism, splits, limit, no imports)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import embedlab
from embedlab.datasets import python_stdlib
from embedlab.datasets import stdlib as stdlib_module
from embedlab.datasets.stdlib import (
    EXCLUDED,
    Function,
    build_dataset,
    first_paragraph,
    module_functions,
    scan_stdlib,
    split_of,
)
from embedlab.errors import ConfigError

SOURCE = textwrap.dedent('''
    """Module docstring."""
    import functools


    def public(a, b):
        """Add two numbers   together
        and return the sum.

        Longer description that is not part of the query.
        """  # a comment after the docstring
        # a comment survives
        return a + b  # Ünïcode comment


    def public_semicolon(a, b):
        """A docstring followed by code on its line.""" ; return a - b


    def same_summary(a, b):
        """Add two numbers   together
        and return the sum.

        Longer description that is not part of the query.
        """
        # a comment survives
        return a + b  # Ünïcode comment


    def _private(x):
        """Private helpers are not documents at all."""
        return x


    def short():
        """Too short."""
        return 1


    def stub():
        """Only a docstring and pass remain here."""
        pass


    def inline(): "Docstring sharing its line with code."; return 2


    class Thing:
        """A class docstring is not a query."""

        @functools.cache
        async def fetch(self, key):
            """Fetch the value stored under the key.

            Details.
            """
            def helper():
                """Nested functions are part of their parent, not documents."""
                return key
            return helper()

        def __len__(self):
            """Dunder methods are left out."""
            return 0

        class Inner:
            def deep(self):
                """Methods of nested classes are found too."""
                return "é" ; x = 1

    class _Hidden:
        def visible(self):
            """A public method of a private class is skipped."""
            return None

    if True:
        def twice():
            """First definition of a function defined twice."""
            return 1
    else:
        def twice():
            """Second definition of a function defined twice."""
            return 2
''')


def test_extraction_rules() -> None:
    functions = list(module_functions("pkg.mod", SOURCE))
    found = {f.id: f for f in functions}
    assert [f.id for f in functions] == ["pkg.mod:public", "pkg.mod:same_summary", "pkg.mod:Thing.fetch",
                                         "pkg.mod:Thing.Inner.deep", "pkg.mod:twice", "pkg.mod:twice"]
    assert found["pkg.mod:same_summary"].query == found["pkg.mod:public"].query
    public = found["pkg.mod:public"]
    assert public.query == "Add two numbers together and return the sum."
    assert public.text == "def public(a, b):\n    # a comment survives\n    return a + b  # Ünïcode comment"
    assert public.module == "pkg.mod"
    fetch = found["pkg.mod:Thing.fetch"]
    assert fetch.query == "Fetch the value stored under the key."
    assert fetch.text.startswith("@functools.cache\nasync def fetch(self, key):\n    def helper():\n")
    assert '"""Nested functions' in fetch.text and "Details" not in fetch.text
    assert found["pkg.mod:Thing.Inner.deep"].text == 'def deep(self):\n    return "é" ; x = 1'


def test_first_paragraph_normalises_whitespace() -> None:
    assert first_paragraph("\n  One\ttwo\n   three  \n\n four") == "One two three"


def test_fake_stdlib_tree(tmp_path: Path) -> None:
    files = {"os_like.py": SOURCE, "pkg/__init__.py": SOURCE, "pkg/sub.py": SOURCE,
             "broken.py": "def f(:\n", "_private.py": SOURCE, "pkg/_impl.py": SOURCE,
             "config-3.x/mod.py": SOURCE, **{f"{name}/mod.py": SOURCE for name in EXCLUDED},
             "pkg/test/mod.py": SOURCE, "__main__.py": SOURCE}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    functions, stats = scan_stdlib(tmp_path)
    assert sorted({f.module for f in functions}) == ["os_like", "pkg", "pkg.sub"]
    assert stats["modules"] == 4 and stats["unparsable_modules"] == ["broken"]
    assert stats["duplicate_definitions"] == 3  # `twice` once per module; the first is kept
    twice = next(f for f in functions if f.id == "pkg:twice")
    assert twice.query.startswith("First definition")


def test_function_ids_are_checked_with_file_and_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ids are module:qualname, identifiers by construction; should a rule change let whitespace
    in (here: a module name), the scan stops at the file and line of the function."""
    (tmp_path / "mod.py").write_text(SOURCE, encoding="utf-8")
    monkeypatch.setattr(stdlib_module, "module_name", lambda relative: "a module")
    message = r"mod\.py:\d+: document id 'a module:\w+' contains whitespace"
    with pytest.raises(embedlab.InvalidInputError, match=message):
        scan_stdlib(tmp_path)


def test_identical_paragraphs_become_one_query() -> None:
    functions = [Function(f"m:f{i}", "m", "Return the thing asked for.", f"def f{i}(): pass")
                 for i in range(3)] + [Function("n:g", "n", "Another query text here.", "def g(): 1")]
    dataset = build_dataset(functions, {})
    assert len(dataset.queries) == 2 and len(dataset.corpus) == 4
    merged = [judged for split in dataset.qrels.values() for judged in split.values() if len(judged) > 1]
    assert merged == [{"m:f0": 1, "m:f1": 1, "m:f2": 1}]
    assert dataset.corpus.attributes["package"].tolist() == ["m", "m", "m", "n"]


def test_split_assignment_is_stable() -> None:
    # Golden values: sha256-based, so they never depend on the interpreter or on hash seeds.
    assert [split_of(f"q-{i:016x}") for i in range(8)] == [
        "train", "dev", "train", "train", "train", "train", "test", "dev"]


@pytest.fixture(scope="module")
def scanned() -> tuple[list[Function], dict[str, object]]:
    """One scan of this interpreter's stdlib, shared by the builds below."""
    return scan_stdlib()


@pytest.fixture
def stdlib(scanned: tuple[list[Function], dict[str, object]],
           monkeypatch: pytest.MonkeyPatch) -> Callable[..., embedlab.Dataset]:
    """``python_stdlib`` reusing the shared scan."""
    monkeypatch.setattr(stdlib_module, "scan_stdlib", lambda: scanned)
    return python_stdlib


@pytest.fixture
def full(stdlib: Callable[..., embedlab.Dataset]) -> embedlab.Dataset:
    return stdlib()


def test_real_build_shape_and_metadata(full: embedlab.Dataset) -> None:
    corpus, meta = full.corpus, full.metadata
    assert full.name == "python-stdlib" and full.splits == ["dev", "test", "train"]
    assert len(corpus) > 2000 and meta["documents"] == len(corpus)
    assert meta["python_version"] == sys.version
    assert meta["python_implementation"] == sys.implementation.name
    shares = {s: meta["splits"][s]["queries"] / len(full.queries) for s in full.splits}
    assert 0.75 < shares["train"] < 0.85 and 0.07 < shares["dev"] < 0.13 and 0.07 < shares["test"] < 0.13
    for name, judged in full.qrels.items():
        assert meta["splits"][name]["queries"] == len(judged)
        assert all(split_of(qid) == name for qid in judged)
    assert corpus.titles is None
    assert corpus.attributes["length"].tolist() == [len(t) for t in corpus.texts]
    modules = corpus.attributes["module"].tolist()
    assert [m.split(".")[0] for m in modules] == corpus.attributes["package"].tolist()
    assert [i.split(":")[0] for i in corpus.ids.tolist()] == modules
    for doc_id in corpus.ids.tolist():
        module, qualname = doc_id.split(":")
        assert not any(p.startswith("_") for p in module.split(".") + qualname.split("."))
        assert not EXCLUDED & set(module.split("."))
    assert "json:dumps" in corpus.position
    assert all(len(q.split()) >= 4 for q in full.queries.texts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(full.split("test").queries) == meta["splits"]["test"]["queries"]


def test_fresh_interpreter_builds_the_same_dataset_without_importing_stdlib(full: embedlab.Dataset) -> None:
    # Another process with another hash seed: nothing may depend on set or dict order.
    probe = textwrap.dedent("""
        import hashlib, json, sys
        from embedlab.datasets import python_stdlib
        d = python_stdlib()
        print(d.corpus.content_hash, d.queries.content_hash)
        print(hashlib.sha256(json.dumps(d.qrels, sort_keys=True).encode()).hexdigest())
        print(sorted({"turtle", "tkinter", "smtplib", "imaplib", "wave", "telnetlib"} & set(sys.modules)))
    """)
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    qrels_hash = hashlib.sha256(json.dumps(full.qrels, sort_keys=True).encode()).hexdigest()
    assert result.stdout.split("\n")[:3] == [f"{full.corpus.content_hash} {full.queries.content_hash}",
                                              qrels_hash, "[]"]


def test_limit_keeps_answerable_queries_in_their_split(full: embedlab.Dataset,
                                                      stdlib: Callable[..., embedlab.Dataset]) -> None:
    small = stdlib(limit=300)
    assert len(small.corpus) == 300 and small.metadata["documents_before_limit"] == len(full.corpus)
    assert set(small.corpus.ids.tolist()) <= set(full.corpus.ids.tolist())
    kept = set(small.corpus.ids.tolist())
    for name, judged in small.qrels.items():
        for qid, docs in judged.items():
            assert docs and set(docs) <= kept
            assert set(docs) == set(full.qrels[name][qid]) & kept
    answerable = {q for judged in full.qrels.values() for q, docs in judged.items() if set(docs) & kept}
    assert set(small.queries.ids.tolist()) == answerable
    positions = [full.corpus.position[i] for i in small.corpus.ids.tolist()]
    assert positions == sorted(positions) and np.unique(positions).size == 300


@pytest.mark.parametrize("limit", [0, -5, 2.5, True, "100"])
def test_invalid_limit(limit: object) -> None:
    with pytest.raises(ConfigError, match="limit must be a positive integer"):
        python_stdlib(limit=limit)  # type: ignore[arg-type]
