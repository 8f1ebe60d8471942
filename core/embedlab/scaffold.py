"""Render the plugin template (``embedlab/templates/plugin``) into a new plugin project.

Template files end in ``.tmpl`` (so that ruff, pytest and setuptools leave the template alone):
their text is rendered and the suffix dropped; other files are copied as they are. File contents
and file/directory names may use the placeholders ``{{name}}``, ``{{module}}``,
``{{distribution}}`` and ``{{class_name}}``.
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
                   distribution="embedlab-" + "-".join(parts), class_name=class_name)

    def placeholders(self) -> dict[str, str]:
        return attrs.asdict(self)


def template_root() -> Traversable:
    """The plugin template shipped inside the ``embedlab`` package."""
    return resources.files("embedlab") / "templates" / "plugin"


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
    target.mkdir()
    for entry in sorted(source.iterdir(), key=lambda e: e.name):
        child_where = f"{where}/{entry.name}"
        name = render_text(entry.name, values, child_where)
        if entry.is_dir():
            _render_tree(entry, target / name, values, child_where)
        elif name.endswith(SUFFIX):
            text = render_text(entry.read_text(encoding="utf-8"), values, child_where)
            (target / name[: -len(SUFFIX)]).write_text(text, encoding="utf-8")
        else:
            (target / name).write_bytes(entry.read_bytes())


def render_plugin(name: str, destination: str | Path, template: Traversable | None = None) -> Path:
    """Render the plugin template for ``name`` into the new directory ``destination``.

    Refuses to touch an existing path. The project is rendered into a temporary sibling directory
    and renamed into place, so a failure leaves nothing half-written.
    """
    values = PluginNames.from_name(name).placeholders()
    target = Path(destination)
    if target.exists():
        raise ConfigError(f"{target} already exists; choose another --output directory or remove it")
    source = template or template_root()
    if not source.is_dir():
        raise ConfigError(f"plugin template not found at {source}: the embedlab installation is "
                          "incomplete (reinstall embedlab)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex}"
    try:
        _render_tree(source, tmp, values, "plugin")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
