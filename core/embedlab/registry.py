"""The component registry: named factories of each kind, filled by plugins."""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Iterator

import attrs

from embedlab.components import KINDS
from embedlab.errors import PluginError, UnknownComponentError
from embedlab.known_plugins import KNOWN_PROVIDERS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@attrs.frozen
class KindSpec:
    """A component kind: the core's six, or one a plugin declares for others to extend
    (embedlab-train declares ``loss``, so a third party can publish a loss)."""

    name: str
    description: str
    plugin: str
    distribution: str


CORE_KINDS = {kind: KindSpec(kind, f"core {kind} protocol", "embedlab", "embedlab") for kind in KINDS}


@attrs.frozen
class ComponentSpec:
    """One registered factory and the plugin that registered it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str
    description: str = ""


class Registry:
    """Named component factories by kind. Plugins receive a :class:`PluginRegistrar` view of it."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], ComponentSpec] = {}
        self._kinds: dict[str, KindSpec] = dict(CORE_KINDS)

    def add_kind(self, kind: KindSpec) -> None:
        existing = self._kinds.get(kind.name)
        if existing is not None:
            raise PluginError(f"kind {kind.name!r} is already declared by plugin {existing.plugin!r} "
                              f"({existing.distribution})")
        self._kinds[kind.name] = kind

    def kinds(self) -> list[str]:
        """Every declared kind: the core's first, then plugin-declared ones, sorted."""
        return [*KINDS, *sorted(k for k in self._kinds if k not in KINDS)]

    def kind(self, name: str) -> KindSpec:
        """The declaration of kind ``name`` or an :class:`UnknownComponentError` listing the kinds."""
        try:
            return self._kinds[name]
        except KeyError:
            raise UnknownComponentError(f"unknown component kind {name!r}; kinds: "
                                        f"{', '.join(self.kinds())}") from None

    def add_spec(self, spec: ComponentSpec) -> None:
        existing = self._specs.get((spec.kind, spec.name))
        if existing is not None:
            raise PluginError(f"{spec.kind} {spec.name!r} is already registered by plugin "
                              f"{existing.plugin!r} ({existing.distribution})")
        self._specs[(spec.kind, spec.name)] = spec

    def names(self, kind: str) -> list[str]:
        """Installed component names of one kind, sorted."""
        return sorted(name for k, name in self._specs if k == kind)

    def specs(self) -> Iterator[ComponentSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: (s.kind, s.name)))

    def spec(self, kind: str, name: str) -> ComponentSpec:
        """The spec for ``(kind, name)`` or an :class:`UnknownComponentError` that helps."""
        self.kind(kind)
        try:
            return self._specs[(kind, name)]
        except KeyError:
            raise UnknownComponentError(self._unknown_message(kind, name)) from None

    def create(self, kind: str, name: str, **params: Any) -> Any:
        """Instantiate a registered component with its parameters."""
        return self.spec(kind, name).factory(**params)

    def _unknown_message(self, kind: str, name: str) -> str:
        installed = self.names(kind)
        lines = [f"no {kind} named {name!r} is installed.",
                 f"Installed {kind}s: {', '.join(installed) or 'none'}."]
        close = difflib.get_close_matches(name, installed, n=3, cutoff=0.5)
        if close:
            lines.append(f"Did you mean: {', '.join(close)}?")
        provider = KNOWN_PROVIDERS.get((kind, name))
        if provider:
            lines.append(f"It is provided by {provider}: pip install {provider}")
        lines.append("Run `embedlab plugins` to see installed plugins and load errors.")
        return " ".join(lines)


@attrs.define
class PluginRegistrar:
    """What a plugin's ``embedlab_register`` hook receives: stages its registrations so that a
    failing plugin leaves nothing half-registered."""

    plugin: str
    distribution: str
    version: str
    staged: list[ComponentSpec] = attrs.field(factory=list)
    staged_kinds: list[KindSpec] = attrs.field(factory=list)

    def add_kind(self, kind: str, *, description: str) -> None:
        """Declare a new component kind that this and other plugins can register components of
        (plugin API 1.1). A plugin that registers a kind's components needs the declaring plugin."""
        if not isinstance(kind, str) or not _NAME.match(kind):
            raise PluginError(f"plugin {self.plugin!r} declared invalid kind {kind!r} "
                              "(letters, digits, '-', '_', '.')")
        if kind in KINDS or any(k.name == kind for k in self.staged_kinds):
            raise PluginError(f"plugin {self.plugin!r} declared kind {kind!r}, which exists already")
        self.staged_kinds.append(KindSpec(kind, description, self.plugin, self.distribution))

    def add(self, kind: str, name: str, factory: Callable[..., Any], *, description: str = "") -> None:
        """Register ``factory`` as the component ``name`` of ``kind`` (a core kind, or one declared
        by a plugin with :meth:`add_kind`; unknown kinds fail the plugin once all plugins loaded)."""
        if not isinstance(kind, str) or not _NAME.match(kind):
            raise PluginError(f"plugin {self.plugin!r} registered a component of invalid kind {kind!r}")
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(f"plugin {self.plugin!r} registered invalid {kind} name {name!r} "
                              "(letters, digits, '-', '_', '.')")
        if not callable(factory):
            raise PluginError(f"plugin {self.plugin!r} registered {kind} {name!r} with a "
                              f"non-callable factory {factory!r}")
        if any(s.kind == kind and s.name == name for s in self.staged):
            raise PluginError(f"plugin {self.plugin!r} registered {kind} {name!r} twice")
        doc = description or (getattr(factory, "__doc__", None) or "").strip().split("\n")[0]
        self.staged.append(ComponentSpec(kind, name, factory, self.plugin, self.distribution,
                                         self.version, doc))
