"""Plugin discovery through pluggy, one plugin at a time, so one broken plugin never breaks the host."""

from __future__ import annotations

import os
import traceback
from importlib import metadata
from types import ModuleType
from typing import Any, Iterable

import attrs
import pluggy

from embedlab import hookspecs
from embedlab.errors import PluginError
from embedlab.registry import (
    PluginRegistrar,
    Registry,
    UnavailablePlugin,
    normalize_distribution,
    split_qualified,
)

#: Version of the plugin API this core provides. A plugin declares ``EMBEDLAB_API_VERSION``;
#: it loads when the major versions match and its minor version is not newer than ours.
#: 1.1 added plugin-declared component kinds (``registry.add_kind``).
API_VERSION = "1.1"
ENTRY_POINT_GROUP = hookspecs.PROJECT
DISABLE_ENV = "EMBEDLAB_DISABLE_PLUGINS"


@attrs.frozen
class PluginInfo:
    """Outcome of loading one plugin."""

    name: str
    distribution: str
    version: str
    status: str  # "loaded", "failed", "incompatible" or "disabled"
    error: str = ""
    components: dict[str, list[str]] = attrs.field(factory=dict)
    kinds: list[str] = attrs.field(factory=list)  # component kinds this plugin declares

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


def _parse_api(version: object) -> tuple[int, int]:
    major, _, minor = str(version).partition(".")
    return int(major), int(minor or 0)


def check_api_version(plugin: str, declared: object) -> None:
    """Raise PluginError with upgrade advice when ``declared`` is incompatible with this core."""
    if declared is None:
        raise PluginError(f"plugin {plugin!r} does not declare EMBEDLAB_API_VERSION")
    try:
        theirs = _parse_api(declared)
    except ValueError:
        raise PluginError(f"plugin {plugin!r} declares an unreadable API version {declared!r}") from None
    ours = _parse_api(API_VERSION)
    if theirs[0] > ours[0] or (theirs[0] == ours[0] and theirs[1] > ours[1]):
        raise PluginError(f"plugin {plugin!r} needs embedlab API {declared}, this embedlab provides "
                          f"{API_VERSION}: upgrade embedlab (pip install -U embedlab)")
    if theirs[0] < ours[0]:
        raise PluginError(f"plugin {plugin!r} was written for embedlab API {declared}, this embedlab "
                          f"provides {API_VERSION}: upgrade the plugin")


def disabled_plugins() -> set[str]:
    """Entries of ``EMBEDLAB_DISABLE_PLUGINS`` (comma-separated): entry-point names, distribution
    names, or ``DISTRIBUTION:NAME`` for one entry point of one distribution."""
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


def is_disabled(name: str, distribution: str, disabled: set[str]) -> bool:
    """Whether the entry point ``name`` of ``distribution`` is listed in ``disabled``."""
    dist = normalize_distribution(distribution)
    for entry in disabled:
        qualifier, bare = split_qualified(entry)
        if qualifier is None:
            if bare == name or normalize_distribution(bare) == dist:
                return True
        elif bare == name and normalize_distribution(qualifier) == dist:
            return True
    return False


def _entry_points(group: str) -> list[tuple[str, str, metadata.EntryPoint]]:
    """``(distribution, version, entry point)`` of every plugin, sorted by distribution then name, so
    that nothing depends on the order distributions happen to sit on disk."""
    found = []
    for ep in metadata.entry_points(group=group):
        dist = getattr(ep, "dist", None)
        name = dist.metadata["Name"] if dist is not None else None
        found.append((name or "unknown", dist.version if dist is not None else "unknown", ep))
    return sorted(found, key=lambda item: (normalize_distribution(item[0]), item[2].name, item[2].value))


def _reraise_interrupt(error: BaseException) -> None:
    """Ctrl-C stops the host; anything else a plugin raises, ``SystemExit`` included, fails only it."""
    if isinstance(error, KeyboardInterrupt):
        raise error


class PluginHost:
    """Loads plugins into a :class:`Registry` and remembers what happened to each."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every plugin installed under the entry-point ``group``.

        A plugin is an entry point of a distribution: two distributions may both have an entry point
        ``faiss``, and both load. Every plugin's hook runs first (each in isolation, its registrations
        staged); then the kinds they declare are committed, then their components, so a plugin may
        register components of a kind that a plugin loaded after it declares."""
        disabled = disabled_plugins()
        staged: list[tuple[ModuleType, PluginRegistrar]] = []
        for dist_name, version, ep in _entry_points(group):
            if is_disabled(ep.name, dist_name, disabled):
                self._record(PluginInfo(ep.name, dist_name, version, "disabled",
                                        f"disabled by {DISABLE_ENV}"))
                continue
            try:
                module = ep.load()
            except BaseException as error:  # noqa: BLE001 - a plugin must never break the host
                _reraise_interrupt(error)
                self._record(PluginInfo(ep.name, dist_name, version, "failed", _format(error, "import")))
                continue
            registrar = self._stage(module, ep.name, dist_name, version)
            if registrar is not None:
                staged.append((module, registrar))
        self._commit_all(staged)

    def load_plugin(self, module: ModuleType | object, name: str, distribution: str = "",
                    version: str = "") -> PluginInfo:
        """Register one plugin object and run its hook in isolation."""
        registrar = self._stage(module, name, distribution, version)
        if registrar is not None:
            self._commit_all([(module, registrar)])
        return self.plugins[-1]

    def _stage(self, module: ModuleType | object, name: str, distribution: str,
               version: str) -> PluginRegistrar | None:
        """Run the plugin's hook against a staging registrar; None (and a record) when it fails."""
        try:
            check_api_version(name, getattr(module, "EMBEDLAB_API_VERSION", None))
        except BaseException as error:  # noqa: BLE001 - even a hostile module attribute
            _reraise_interrupt(error)
            message = str(error) if isinstance(error, PluginError) else _format(error, "version check")
            self._record(PluginInfo(name, distribution, version, "incompatible", message))
            return None
        registrar = PluginRegistrar(name, distribution, version)
        try:
            self.manager.register(module, name=f"{distribution}:{name}" if distribution else name)
        except Exception as error:  # noqa: BLE001
            self._record(PluginInfo(name, distribution, version, "failed", _format(error, "registration")))
            return None
        try:
            others = [p for p in self.manager.get_plugins() if p is not module]
            caller = self.manager.subset_hook_caller("embedlab_register", remove_plugins=others)
            caller(registry=registrar)
        except BaseException as error:  # noqa: BLE001 - sys.exit in a hook must not end the host
            _reraise_interrupt(error)
            self.manager.unregister(module)
            self._record(PluginInfo(name, distribution, version, "failed", _format(error, "registration")),
                         registrar)
            return None
        return registrar

    def _commit_all(self, staged: list[tuple[ModuleType | object, PluginRegistrar]]) -> None:
        """Commit staged plugins: declared kinds first, then components. A plugin whose kinds clash
        or whose components name a kind nobody declared fails as a whole; so does, in turn, a plugin
        that relied on a kind of a plugin that failed. Component names that several plugins register
        do not fail anyone: the registry keeps every provider (see :mod:`embedlab.registry`)."""
        alive = list(staged)
        errors: dict[str, str] = {}
        declared: dict[str, PluginRegistrar] = {}
        for _, registrar in staged:
            for kind in registrar.staged_kinds:
                owner = (declared[kind.name].plugin, declared[kind.name].distribution) \
                    if kind.name in declared else None
                if kind.name in self.registry.kinds():
                    existing = self.registry.kind(kind.name)
                    owner = (existing.plugin, existing.distribution)
                if owner is not None:
                    errors[_key(registrar)] = (f"registration failed: kind {kind.name!r} is already declared "
                                               f"by plugin {owner[0]!r} ({owner[1]}); the first distribution "
                                               "in alphabetical order keeps it")
                else:
                    declared[kind.name] = registrar
        changed = True
        while changed:  # drop plugins whose components need a kind no surviving plugin declares
            changed = False
            alive_keys = {_key(r) for _, r in alive if _key(r) not in errors}
            kinds = set(self.registry.kinds()) | {k for k, r in declared.items() if _key(r) in alive_keys}
            for _, registrar in alive:
                if _key(registrar) in errors:
                    continue
                missing = sorted({s.kind for s in registrar.staged if s.kind not in kinds})
                if missing:
                    errors[_key(registrar)] = (f"registration failed: unknown kind(s) {', '.join(missing)}; "
                                               f"kinds: {', '.join(sorted(kinds))} (a plugin-declared kind "
                                               "needs its declaring plugin installed and loaded)")
                    changed = True
        for module, registrar in alive:
            if _key(registrar) not in errors:
                try:
                    self._commit(registrar)
                except PluginError as error:
                    errors[_key(registrar)] = f"registration failed: PluginError: {error}"
            info = (registrar.plugin, registrar.distribution, registrar.version)
            if _key(registrar) in errors:
                self.manager.unregister(module)
                self._record(PluginInfo(*info, "failed", errors[_key(registrar)]), registrar)
                continue
            components: dict[str, list[str]] = {}
            for spec in registrar.staged:
                components.setdefault(spec.kind, []).append(spec.name)
            self._record(PluginInfo(*info, "loaded", "", components,
                                    [k.name for k in registrar.staged_kinds]))

    def _commit(self, registrar: PluginRegistrar) -> None:
        for kind in registrar.staged_kinds:
            self.registry.add_kind(kind)
        for spec in registrar.staged:
            self.registry.add_spec(spec)

    def _record(self, info: PluginInfo, registrar: PluginRegistrar | None = None) -> PluginInfo:
        self.plugins.append(info)
        if info.status != "loaded":
            staged = tuple((s.kind, s.name) for s in registrar.staged) if registrar is not None else ()
            self.registry.add_unavailable(UnavailablePlugin(info.name, info.distribution, info.version,
                                                            info.status, info.error, staged))
        return info

    def failures(self) -> Iterable[PluginInfo]:
        """Plugins that are installed but provide nothing because they failed or are incompatible."""
        return (p for p in self.plugins if p.status in ("failed", "incompatible"))

    def problems(self) -> list[str]:
        """One line per failed or incompatible plugin and per ambiguous component name."""
        what = {"failed": "failed to load", "incompatible": "is incompatible"}
        lines = [f"plugin {p.name!r} ({p.distribution} {p.version}) {what[p.status]}: {p.error}"
                 for p in self.failures()]
        for providers in self.registry.clashes():
            first = providers[0]
            lines.append(f"{first.kind} {first.name!r} is provided by several plugins "
                         f"({', '.join(p.distribution for p in providers)}): use "
                         f"{' or '.join(p.qualified_name for p in providers)}")
        return lines


def _key(registrar: PluginRegistrar) -> tuple[str, str]:
    return registrar.distribution, registrar.plugin


def _format(error: BaseException, stage: str) -> str:
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{stage} failed: {type(error).__name__}: {error}{where}"
