"""Render the plugin template into a new plugin project.

A project is the common part (``embedlab/templates/plugin``: pyproject, README, the module with the
hook, claims, the discovery test) overlaid with one kind's example (``embedlab/templates/kinds/KIND``:
the component module and its behaviour tests). Template files end in ``.tmpl`` (so that ruff,
pytest and setuptools leave the template alone): their text is rendered and the suffix dropped;
other files are copied as they are. A kind's ``README.usage.md`` and ``README.parameters.md`` are
not copied: they fill the README's ``{{usage}}`` and ``{{parameters}}``. File contents and names may
use the placeholders of :meth:`PluginNames.placeholders` plus ``kind``, ``factory`` (what the hook
registers), ``api_version``, ``usage`` and ``parameters``.
"""

from __future__ import annotations

import keyword
import os
import re
import shutil
import uuid
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

from embedlab.errors import ConfigError

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".tmpl"
#: Kinds ``embedlab new-plugin --kind`` has an example for; the factory each example registers.
KIND_FACTORIES = {"compressor": "{class_name}", "encoder": "{class_name}", "index": "{class_name}",
                  "reranker": "{class_name}", "metric": "{class_name}", "dataset": "{snake_name}_dataset"}
README_SNIPPETS = ("usage", "parameters")
_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
MAX_NAME_LENGTH = 40


@attrs.frozen
class PluginNames:
    """The names derived from a plugin name such as ``my-method``."""

    name: str  # entry-point and component name: my-method
    module: str  # import name: embedlab_my_method
    distribution: str  # PyPI name: embedlab-my-method
    class_name: str  # example component class: MyMethod
    snake_name: str  # Python identifier: my_method

    @classmethod
    def from_name(cls, name: str) -> PluginNames:
        """Validate ``name`` and derive the other names, or raise ConfigError saying how to fix it."""
        if name.lower().startswith("embedlab"):
            raise ConfigError(f"plugin name {name!r}: leave out the 'embedlab' prefix, it is added "
                              f"for you (try {name[8:].lstrip('-_') or 'NAME'!r})")
        if not _NAME.match(name) or len(name) > MAX_NAME_LENGTH:
            raise ConfigError(f"invalid plugin name {name!r}: use lowercase letters, digits and single "
                              "'-' or '_' between them, starting with a letter, at most "
                              f"{MAX_NAME_LENGTH} characters (for example 'my-method')")
        parts = re.split(r"[-_]", name)
        class_name = "".join(part.capitalize() for part in parts)
        if keyword.iskeyword(class_name):
            class_name += "Component"
        return cls(name=name, module="embedlab_" + "_".join(parts),
                   distribution="embedlab-" + "-".join(parts), class_name=class_name,
                   snake_name="_".join(parts))

    def placeholders(self) -> dict[str, str]:
        return attrs.asdict(self)


def template_root() -> Traversable:
    """The common part of the plugin template, shipped inside the ``embedlab`` package."""
    return resources.files("embedlab") / "templates" / "plugin"


def kind_root(kind: str) -> Traversable:
    """The example of one component kind, overlaid on :func:`template_root`."""
    if kind not in KIND_FACTORIES:
        raise ConfigError(f"no plugin template for kind {kind!r}; choose one of {', '.join(KIND_FACTORIES)}")
    return resources.files("embedlab") / "templates" / "kinds" / kind


def placeholders(name: str, kind: str, kind_template: Traversable) -> dict[str, str]:
    """Every placeholder's value for plugin ``name`` of ``kind`` (README snippets rendered)."""
    from embedlab.plugins import API_VERSION

    values = PluginNames.from_name(name).placeholders()
    values.update(kind=kind, factory=KIND_FACTORIES[kind].format(**values), api_version=API_VERSION)
    for snippet in README_SNIPPETS:
        entry = kind_template / f"README.{snippet}.md"
        text = entry.read_text(encoding="utf-8") if entry.is_file() else ""
        values[snippet] = render_text(text, values, f"kinds/{kind}/{entry.name}").strip()
    return values


def render_text(text: str, values: dict[str, str], where: str) -> str:
    """Replace every ``{{key}}``; an unknown key is a template bug and raises ConfigError."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ConfigError(f"template {where}: unknown placeholder {{{{{key}}}}}; "
                              f"known: {', '.join(sorted(values))}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, text)


def _render_tree(source: Traversable, target: Path, values: dict[str, str], where: str) -> None:
    target.mkdir(exist_ok=True)
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        if entry.name in {f"README.{snippet}.md" for snippet in README_SNIPPETS}:
            continue
        child_where = f"{where}/{entry.name}"
        name = render_text(entry.name, values, child_where)
        if entry.is_dir():
            _render_tree(entry, target / name, values, child_where)
        elif name.endswith(SUFFIX):
            text = render_text(entry.read_text(encoding="utf-8"), values, child_where)
            _create(target / name[: -len(SUFFIX)], text.encode("utf-8"), child_where)
        else:
            _create(target / name, entry.read_bytes(), child_where)


def _create(path: Path, content: bytes, where: str) -> None:
    """Write a new file; a kind's file may not replace a common one (a template bug)."""
    try:
        with open(path, "xb") as handle:
            handle.write(content)
    except FileExistsError:
        raise ConfigError(f"template {where}: {path.name} is already written by the common template") from None


def render_plugin(name: str, destination: str | Path, template: Traversable | None = None, *,
                  kind: str = "compressor", kind_template: Traversable | None = None) -> Path:
    """Render the plugin template for ``name``, with the example component of ``kind``, into the
    new directory ``destination``.

    Refuses to touch an existing path. The project is rendered into a temporary sibling directory
    and renamed into place, so a failure leaves nothing half-written.
    """
    kind_source = kind_template or kind_root(kind)
    values = placeholders(name, kind, kind_source)
    target = Path(destination)
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --output directory or remove it")
    source = template or template_root()
    for tree in (source, kind_source):
        if not tree.is_dir():
            raise ConfigError(f"plugin template not found at {tree}: the embedlab installation is "
                              "incomplete (reinstall embedlab)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    try:
        _render_tree(source, tmp, values, "plugin")
        _render_tree(kind_source, tmp, values, f"kinds/{kind}")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
