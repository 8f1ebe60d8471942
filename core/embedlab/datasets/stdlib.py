"""The ``python-stdlib`` dataset, generated from the running interpreter's standard library.

Nothing is downloaded and no standard-library module is imported: every ``.py`` file under
``sysconfig.get_paths()["stdlib"]`` is parsed with :mod:`ast`.

* **document**: the source of a public function or public method (decorators included, docstring
  removed, dedented); id ``module:qualname`` (``json.decoder:JSONDecoder.decode``). No titles:
  the ``def`` line already names the function, so documents are plain code, as in CoSQA.
* **query**: the first paragraph of that function's docstring, whitespace normalised. Functions
  whose paragraph has fewer than :data:`MIN_QUERY_WORDS` words, or whose body is nothing but the
  docstring (and ``pass``/``...``), are left out. Functions sharing a paragraph share one query
  whose qrels list all of them (grade 1); its id is ``q-`` + 16 hex digits of the text's sha256.
* **splits**: train/dev/test (80/10/10) by the sha256 of the query id, so a query keeps its split
  whatever the interpreter's other functions, file order or ``limit``.
* **attributes** per document: ``package`` (top-level package or module), ``module`` (dotted
  module name) and ``length`` (characters of the document).

Skipped: ``site-packages``, ``test``/``tests`` packages, idlelib, lib2to3, turtledemo, ensurepip,
private modules and names (leading underscore, which covers dunder methods), nested functions,
and files that do not parse. Where a module defines a name twice (``if``/``else`` or ``try``
branches), the first definition is kept.
"""

from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
import textwrap
import tokenize
import warnings
from pathlib import Path
from typing import Iterator

import attrs
import numpy as np
from tqdm import tqdm

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError
from embedlab.ids import check_id

NAME = "python-stdlib"
MIN_QUERY_WORDS = 4
#: Split name and the upper end of its share of the [0, 1) hash range.
SPLITS = (("train", 0.8), ("dev", 0.9), ("test", 1.0))
EXCLUDED = frozenset({"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3",
                      "turtledemo", "ensurepip"})

_FunctionNode = (ast.FunctionDef, ast.AsyncFunctionDef)


@attrs.frozen
class Function:
    """One public function: its document and the query taken from its docstring."""

    id: str
    module: str
    query: str
    text: str
    line: int = 0


def _unit_hash(value: str) -> float:
    """A value in [0, 1) from the sha256 of ``value``: stable across runs and interpreters."""
    return int.from_bytes(hashlib.sha256(value.encode("utf-8")).digest()[:8], "big") / 2.0**64


def split_of(query_id: str) -> str:
    """The split (train/dev/test) a query id falls in."""
    position = _unit_hash(query_id)
    return next(name for name, upper in SPLITS if position < upper)


def query_id(text: str) -> str:
    return "q-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def module_name(relative: Path) -> str | None:
    """Dotted module name of a ``.py`` path relative to the stdlib, or None when it is skipped."""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if not parts or any(p in EXCLUDED or p.startswith("_") or not p.isidentifier() for p in parts):
        return None
    return ".".join(parts)


def stdlib_modules(root: Path) -> list[tuple[str, Path]]:
    """(module name, file) of every public stdlib module, sorted by module name."""
    found = []
    for file in root.rglob("*.py"):
        name = module_name(file.relative_to(root))
        if name is not None:
            found.append((name, file))
    return sorted(found)


def first_paragraph(docstring: str) -> str:
    """The docstring's first paragraph on one line (runs of whitespace become one space)."""
    lines = []
    for line in docstring.strip().splitlines():
        if not line.strip():
            break
        lines.append(line)
    return " ".join(" ".join(lines).split())


def _statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements of a block, looking inside ``if``/``try`` branches (platform-specific defs)."""
    for node in body:
        if isinstance(node, ast.If):
            yield from _statements(node.body)
            yield from _statements(node.orelse)
        elif isinstance(node, (ast.Try, getattr(ast, "TryStar", ast.Try))):
            yield from _statements(node.body)
            for handler in node.handlers:
                yield from _statements(handler.body)
            yield from _statements(node.orelse)
            yield from _statements(node.finalbody)
        else:
            yield node


def _public_functions(body: list[ast.stmt], prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    """(qualname, node) of public functions and methods of public classes, in source order."""
    for node in _statements(body):
        if isinstance(node, _FunctionNode) and not node.name.startswith("_"):
            yield prefix + node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from _public_functions(node.body, f"{prefix}{node.name}.")


def _byte_slice(line: str, start: int, end: int | None = None) -> str:
    """Slice a line by UTF-8 byte offsets, as ast reports columns."""
    return line.encode("utf-8")[start:end].decode("utf-8")


def _document(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str]) -> str | None:
    """Source of ``node`` without its docstring, dedented; None when nothing but the docstring
    (and ``pass``/``...``) remains or the docstring shares a line with other code."""
    rest = node.body[1:]
    if all(isinstance(s, ast.Pass) or (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                        and s.value.value is Ellipsis) for s in rest):
        return None
    doc = node.body[0]
    first, last = doc.lineno - 1, doc.end_lineno - 1  # type: ignore[operator]
    after = _byte_slice(lines[last], doc.end_col_offset).lstrip(" \t;")
    if _byte_slice(lines[first], 0, doc.col_offset).strip() or (after and not after.startswith("#")):
        return None
    start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
    end = node.end_lineno - 1  # type: ignore[operator]
    kept = lines[start:first] + lines[last + 1:end + 1]
    return textwrap.dedent("\n".join(kept)).strip("\n")


def module_functions(module: str, source: str, min_words: int = MIN_QUERY_WORDS) -> Iterator[Function]:
    """Public functions of one module's source that yield a query and a document."""
    with warnings.catch_warnings():  # e.g. invalid escape sequences: not ours to report
        warnings.simplefilter("ignore")
        tree = ast.parse(source)
    lines = source.split("\n")
    for qualname, node in _public_functions(tree.body):
        docstring = ast.get_docstring(node)  # type: ignore[arg-type]
        if not docstring:
            continue
        query = first_paragraph(docstring)
        if len(query.split()) < min_words:
            continue
        text = _document(node, lines)  # type: ignore[arg-type]
        if text:
            yield Function(f"{module}:{qualname}", module, query, text, node.lineno)


def _read_source(file: Path) -> str:
    """Decode a source file as Python does (encoding cookie, universal newlines)."""
    with tokenize.open(file) as handle:
        return handle.read()


def scan_stdlib(root: Path | None = None) -> tuple[list[Function], dict[str, object]]:
    """Every usable function of the stdlib at ``root`` (default: this interpreter's), first
    definition of each id kept, and statistics of the scan."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    modules = stdlib_modules(root)
    functions: dict[str, Function] = {}
    unparsable: list[str] = []
    duplicates = 0
    for module, file in tqdm(modules, desc="python-stdlib: parsing", unit="file", disable=None):
        try:
            found = list(module_functions(module, _read_source(file)))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            unparsable.append(module)
            continue
        for function in found:
            check_id(function.id, f"{file}:{function.line}", "document id")
            if function.id in functions:
                duplicates += 1
            else:
                functions[function.id] = function
    stats = {"stdlib": str(root), "modules": len(modules), "unparsable_modules": unparsable,
             "duplicate_definitions": duplicates}
    return list(functions.values()), stats


def _keep_subset(functions: list[Function], limit: int) -> list[Function]:
    """The ``limit`` functions with the smallest id hashes, in their original order."""
    chosen = set(sorted((f.id for f in functions), key=_unit_hash)[:limit])
    return [f for f in functions if f.id in chosen]


def build_dataset(functions: list[Function], metadata: dict[str, object]) -> Dataset:
    """Merge identical queries, assign splits and assemble the :class:`Dataset`."""
    relevant: dict[str, list[str]] = {}
    for function in functions:
        relevant.setdefault(function.query, []).append(function.id)
    query_texts = list(relevant)
    query_ids = [query_id(text) for text in query_texts]
    qrels: dict[str, dict[str, dict[str, int]]] = {name: {} for name, _ in SPLITS}
    for qid, text in zip(query_ids, query_texts):
        qrels[split_of(qid)][qid] = {doc_id: 1 for doc_id in relevant[text]}
    modules = [f.module for f in functions]
    corpus = Corpus(ids=[f.id for f in functions], texts=[f.text for f in functions],
                    attributes={"package": np.array([m.split(".")[0] for m in modules], dtype=str),
                                "module": np.array(modules, dtype=str),
                                "length": np.array([len(f.text) for f in functions], dtype=np.int64)})
    counts = {name: {"queries": len(q), "qrels": sum(map(len, q.values()))} for name, q in qrels.items()}
    metadata = {**metadata, "documents": len(corpus), "queries": len(query_ids), "splits": counts}
    return Dataset(NAME, corpus, Queries(query_ids, query_texts), qrels, metadata)


def python_stdlib(*, limit: int | None = None) -> Dataset:
    """Python standard library: docstring summaries -> function source (generated, no download).

    ``limit`` keeps a deterministic, hash-selected subset of that many documents and the queries
    still answerable in it (their split does not change), for quick experiments.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"{NAME}: limit must be a positive integer or None, got {limit!r}")
    functions, stats = scan_stdlib()
    total = len(functions)
    if limit is not None and limit < total:
        functions = _keep_subset(functions, limit)
    metadata = {"python_version": sys.version, "python_implementation": sys.implementation.name,
                **stats, "limit": limit, "documents_before_limit": total,
                "min_query_words": MIN_QUERY_WORDS}
    return build_dataset(functions, metadata)
