"""The component registry: named factories of each kind, filled by plugins.

A name is unique within its kind *per plugin*: two plugins may register the same ``(kind, name)``.
Both keep it (and all their other components); asking for the bare name is then an
:class:`~embedlab.errors.AmbiguousComponentError` naming both distributions, and the user picks one
with a qualified name, ``DISTRIBUTION:NAME`` or ``PLUGIN:NAME`` (``embedlab-faiss:faiss``), or by
disabling the other plugin (``EMBEDLAB_DISABLE_PLUGINS``). No load order decides anything.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Callable, Iterator

import attrs

from embedlab.components import KINDS, Component
from embedlab.errors import AmbiguousComponentError, PluginError, UnknownComponentError
from embedlab.known_plugins import KNOWN_PROVIDERS

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
QUALIFIER = ":"


def normalize_distribution(name: str) -> str:
    """PEP 503 normal form, so ``Embedlab_FAISS`` and ``embedlab-faiss`` name the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split_qualified(name: str) -> tuple[str | None, str]:
    """``"embedlab-faiss:faiss"`` -> ``("embedlab-faiss", "faiss")``; a bare name -> ``(None, name)``."""
    qualifier, sep, bare = name.rpartition(QUALIFIER)
    return (qualifier, bare) if sep else (None, name)


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

    @property
    def qualified_name(self) -> str:
        """``DISTRIBUTION:NAME``: names this component even when another plugin has the same name."""
        return f"{self.distribution}{QUALIFIER}{self.name}"

    def matches(self, qualifier: str) -> bool:
        """Whether ``qualifier`` (a distribution or plugin name) designates this spec's provider."""
        return qualifier == self.plugin or normalize_distribution(qualifier) == normalize_distribution(
            self.distribution)


@attrs.frozen
class UnavailablePlugin:
    """An installed plugin that provides nothing: failed, incompatible or disabled. Kept so that
    asking for one of its components says why it is missing instead of "not installed"."""

    plugin: str
    distribution: str
    version: str
    status: str
    reason: str
    components: tuple[tuple[str, str], ...] = ()  # (kind, name) it registered before failing

    def may_provide(self, kind: str, name: str) -> bool:
        known = KNOWN_PROVIDERS.get((kind, name))
        return ((kind, name) in self.components or name == self.plugin
                or (known is not None and normalize_distribution(known) == normalize_distribution(
                    self.distribution)))

    def explain(self) -> str:
        why = {"disabled": "is disabled", "incompatible": "is installed but incompatible",
               "failed": "is installed but failed to load"}.get(self.status, f"is {self.status}")
        return f"plugin {self.plugin!r} ({self.distribution} {self.version}), {why}: {self.reason}"


class Registry:
    """Named component factories by kind. Plugins receive a :class:`PluginRegistrar` view of it."""

    def __init__(self) -> None:
        self._specs: dict[tuple[str, str], list[ComponentSpec]] = {}
        self._kinds: dict[str, KindSpec] = dict(CORE_KINDS)
        self._unavailable: list[UnavailablePlugin] = []

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
        """Add a provider of ``(spec.kind, spec.name)``; other plugins' providers of it stay."""
        providers = self._specs.setdefault((spec.kind, spec.name), [])
        if any(p.plugin == spec.plugin and p.distribution == spec.distribution for p in providers):
            raise PluginError(f"{spec.kind} {spec.name!r} is already registered by plugin "
                              f"{spec.plugin!r} ({spec.distribution})")
        providers.append(spec)
        providers.sort(key=lambda p: (normalize_distribution(p.distribution), p.plugin))

    def remove_spec(self, spec: ComponentSpec) -> None:
        """Remove one provider (a test double registered with :func:`embedlab.testing.registered`)."""
        providers = self._specs.get((spec.kind, spec.name), [])
        providers.remove(spec)
        if not providers:
            del self._specs[(spec.kind, spec.name)]

    def add_unavailable(self, plugin: UnavailablePlugin) -> None:
        """Remember an installed plugin that provides nothing, for error messages."""
        self._unavailable.append(plugin)

    def names(self, kind: str) -> list[str]:
        """Installed component names of one kind, sorted (a name several plugins provide once)."""
        return sorted(name for k, name in self._specs if k == kind)

    def specs(self) -> Iterator[ComponentSpec]:
        """Every provider of every component, sorted by kind, name and distribution."""
        return iter([spec for key in sorted(self._specs) for spec in self._specs[key]])

    def providers(self, kind: str, name: str) -> list[ComponentSpec]:
        """Every plugin's spec for the bare ``(kind, name)``, sorted by distribution."""
        return list(self._specs.get((kind, name), []))

    def clashes(self) -> list[list[ComponentSpec]]:
        """Components that several plugins provide (each list names one ``(kind, name)``)."""
        return [list(providers) for _, providers in sorted(self._specs.items()) if len(providers) > 1]

    def spec(self, kind: str, name: str, *, distribution: str | None = None) -> ComponentSpec:
        """The spec for ``(kind, name)``.

        ``name`` may be qualified, ``DISTRIBUTION:NAME`` or ``PLUGIN:NAME``; ``distribution`` (from a
        saved manifest) picks among several providers when it matches one. Raises
        :class:`UnknownComponentError` that says what is installed (and why a plugin that should
        provide it does not), or :class:`AmbiguousComponentError` naming every provider."""
        self.kind(kind)
        qualifier, bare = split_qualified(name) if isinstance(name, str) else (None, name)
        providers = self._specs.get((kind, bare), [])
        if qualifier is not None:
            providers = [p for p in providers if p.matches(qualifier)]
        elif distribution is not None and len(providers) > 1:
            providers = [p for p in providers if p.matches(distribution)] or providers
        if len(providers) == 1:
            return providers[0]
        if providers:
            raise AmbiguousComponentError(self._ambiguous_message(kind, name, providers))
        raise UnknownComponentError(self._unknown_message(kind, bare, qualifier))

    def create(self, kind: str, name: str, **params: Any) -> Any:
        """Instantiate a registered component with its parameters."""
        return self.spec(kind, name).factory(**params)

    def _ambiguous_message(self, kind: str, name: str, providers: list[ComponentSpec]) -> str:
        listed = " and ".join(f"{p.distribution} {p.version} (plugin {p.plugin!r})" for p in providers)
        qualified = " or ".join(repr(p.qualified_name) for p in providers)
        others = ",".join(p.distribution for p in providers[1:])
        return (f"{kind} name {name!r} is ambiguous: it is provided by {listed}. Choose one: write "
                f"{qualified} (in Python or as name = ... in a TOML file), or disable the other "
                f"plugin, e.g. EMBEDLAB_DISABLE_PLUGINS={others}. `embedlab plugins` lists the clashes.")

    def _unknown_message(self, kind: str, name: str, qualifier: str | None = None) -> str:
        installed = self.names(kind)
        if qualifier is not None and (kind, name) in self._specs:
            owners = ", ".join(repr(p.qualified_name) for p in self._specs[(kind, name)])
            return (f"no {kind} named {name!r} is provided by {qualifier!r}; installed providers: "
                    f"{owners}.")
        why = [p.explain() for p in self._unavailable if p.may_provide(kind, name)]
        if why:
            return (f"{kind} {name!r} is not available: it should come from {'; or from '.join(why)}. "
                    "Run `embedlab plugins` to see every plugin's status.")
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
        _check_declared_identity(self.plugin, kind, name, factory)
        doc = description or (getattr(factory, "__doc__", None) or "").strip().split("\n")[0]
        self.staged.append(ComponentSpec(kind, name, factory, self.plugin, self.distribution,
                                         self.version, doc))


def _check_declared_identity(plugin: str, kind: str, name: str, factory: Callable[..., Any]) -> None:
    """A class that declares ``kind``/``name`` (every :class:`~embedlab.Component`) must be registered
    under them: its saved manifests carry them, and ``load_component`` looks them up again. Register an
    alias or a preset through a function (or ``functools.partial``), not the class itself."""
    if not isinstance(factory, type):
        return
    is_component = issubclass(factory, Component)
    for field, registered in (("kind", kind), ("name", name)):
        declared = getattr(factory, field, None)
        if declared is None and is_component:
            raise PluginError(f"plugin {plugin!r} registered {kind} {name!r} with {factory.__qualname__}, "
                              f"a Component subclass without a {field!r} class attribute: set "
                              f"{field} = {registered!r}")
        if isinstance(declared, str) and declared != registered:
            raise PluginError(f"plugin {plugin!r} registered {factory.__qualname__} as {field} "
                              f"{registered!r}, but the class declares {field} = {declared!r}; saved "
                              f"states name the {field} the class declares, so register it as "
                              f"{declared!r} (or set {field} = {registered!r})")
