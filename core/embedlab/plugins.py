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
from embedlab.registry import PluginRegistrar, Registry

#: Version of the plugin API this core provides. A plugin declares ``EMBEDLAB_API_VERSION``;
#: it loads when the major versions match and its minor version is not newer than ours.
API_VERSION = "1.0"
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
    """Plugin names listed in ``EMBEDLAB_DISABLE_PLUGINS`` (comma-separated)."""
    return {p.strip() for p in os.environ.get(DISABLE_ENV, "").split(",") if p.strip()}


class PluginHost:
    """Loads plugins into a :class:`Registry` and remembers what happened to each."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: list[PluginInfo] = []

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load every plugin installed under the entry-point ``group``."""
        disabled = disabled_plugins()
        seen: set[str] = set()
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else "unknown"
            version = dist.version if dist is not None else "unknown"
            if ep.name in seen:
                continue
            seen.add(ep.name)
            if ep.name in disabled or dist_name in disabled:
                self.plugins.append(PluginInfo(ep.name, dist_name, version, "disabled",
                                               f"disabled by {DISABLE_ENV}"))
                continue
            try:
                module = ep.load()
            except BaseException as error:  # noqa: BLE001 - a plugin must never break the host
                if isinstance(error, KeyboardInterrupt):
                    raise
                self.plugins.append(PluginInfo(ep.name, dist_name, version, "failed",
                                               _format(error, "import")))
                continue
            self.load_plugin(module, ep.name, dist_name, version)

    def load_plugin(self, module: ModuleType | object, name: str, distribution: str = "",
                    version: str = "") -> PluginInfo:
        """Register one plugin object and run its hook in isolation."""
        try:
            check_api_version(name, getattr(module, "EMBEDLAB_API_VERSION", None))
        except PluginError as error:
            return self._record(PluginInfo(name, distribution, version, "incompatible", str(error)))
        registrar = PluginRegistrar(name, distribution, version)
        try:
            self.manager.register(module, name=name)
        except Exception as error:  # noqa: BLE001
            return self._record(PluginInfo(name, distribution, version, "failed",
                                           _format(error, "registration")))
        try:
            others = [p for p in self.manager.get_plugins() if p is not module]
            caller = self.manager.subset_hook_caller("embedlab_register", remove_plugins=others)
            caller(registry=registrar)
            self._commit(registrar)
        except Exception as error:  # noqa: BLE001
            self.manager.unregister(module)
            return self._record(PluginInfo(name, distribution, version, "failed",
                                           _format(error, "registration")))
        components: dict[str, list[str]] = {}
        for spec in registrar.staged:
            components.setdefault(spec.kind, []).append(spec.name)
        return self._record(PluginInfo(name, distribution, version, "loaded", "", components))

    def _commit(self, registrar: PluginRegistrar) -> None:
        clashes = [s for s in registrar.staged
                   if s.name in self.registry.names(s.kind)]
        if clashes:
            first = clashes[0]
            owner = self.registry.spec(first.kind, first.name)
            raise PluginError(f"{first.kind} {first.name!r} is already registered by plugin "
                              f"{owner.plugin!r} ({owner.distribution})")
        for spec in registrar.staged:
            self.registry.add_spec(spec)

    def _record(self, info: PluginInfo) -> PluginInfo:
        self.plugins.append(info)
        return info

    def failures(self) -> Iterable[PluginInfo]:
        return (p for p in self.plugins if p.status in ("failed", "incompatible"))


def _format(error: BaseException, stage: str) -> str:
    last = traceback.extract_tb(error.__traceback__)[-1:] if error.__traceback__ else []
    where = f" (at {last[0].filename}:{last[0].lineno})" if last else ""
    return f"{stage} failed: {type(error).__name__}: {error}{where}"
