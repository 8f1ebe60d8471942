"""Configured components: an attrs config per component and a canonical fingerprint."""

from __future__ import annotations

import functools
import hashlib
import json
from enum import Enum
from importlib import metadata
from pathlib import PurePath
from typing import Any, ClassVar

import attrs

from embedlab.errors import ConfigError
from embedlab.validators import check_declared_types, sentence

KINDS = ("encoder", "compressor", "index", "reranker", "metric", "dataset", "retriever")


@attrs.frozen
class EmptyConfig:
    """Config of a component without parameters."""


class Component:
    """Base class for components configured by an attrs ``Config`` class.

    Subclasses set ``name``, ``kind`` and ``Config``; they are built either from a config instance
    or from keyword parameters, which the ``Config`` validators check::

        class Int8(Component):
            kind = "compressor"
            name = "int8"

            @attrs.frozen
            class Config:
                per_dimension: bool = True

        Int8(per_dimension=False)
    """

    kind: ClassVar[str]
    name: ClassVar[str]
    Config: ClassVar[type] = EmptyConfig

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        if config is not None and params:
            raise ConfigError(f"{self.name}: pass a config object or parameters, not both")
        self.config = config if config is not None else make_config(self.Config, params, self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self)


def make_config(config_class: type, params: dict[str, Any], owner: str) -> Any:
    """Instantiate an attrs config, turning unknown keys, values of the wrong declared type
    (``int``/``float``/``bool`` fields, :func:`embedlab.validators.check_declared_types`) and
    validator failures into ConfigError."""
    known = {f.alias or f.name for f in attrs.fields(config_class)} if attrs.has(config_class) else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise ConfigError(f"{owner}: unknown parameter(s) {', '.join(unknown)}; "
                          f"accepted: {', '.join(sorted(known)) or 'none'}")
    try:
        if attrs.has(config_class):
            check_declared_types(config_class, params)
        return config_class(**params)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{owner}: {sentence(error)}") from None


#: attrs field metadata marking a setting that cannot change results (threads, progress bars):
#: ``attrs.field(default=None, metadata=NOT_IDENTITY)``. Such fields stay out of fingerprints, so
#: changing them keeps cache hits.
NOT_IDENTITY = {"embedlab_identity": False}


def _jsonable(value: Any, *, identity: bool = False) -> Any:
    if attrs.has(type(value)):
        fields = attrs.fields(type(value))
        return {f.name: _jsonable(getattr(value, f.name), identity=identity) for f in fields
                if not (identity and f.metadata.get("embedlab_identity") is False)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, identity=identity) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, identity=identity) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def config_dict(component: Any) -> dict[str, Any]:
    """The component's full configuration as JSON-ready data."""
    config = getattr(component, "config", None)
    return _jsonable(config) if config is not None else {}


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def distribution_of(obj: Any) -> tuple[str, str]:
    """(distribution name, version) of the installed package that defines ``obj``'s class."""
    module = (type(obj) if not isinstance(obj, type) else obj).__module__
    top = module.split(".")[0]
    names = _packages_distributions().get(top, [])
    if not names:
        return top, "unknown"
    try:
        return names[0], metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return names[0], "unknown"


def parts_of(component: Any) -> dict[str, Any]:
    """The components a composite is made of (a fusion's retrievers, a first stage's encoder and
    index): ``component.parts()`` when it defines it, else none."""
    parts = getattr(component, "parts", None)
    return dict(parts()) if callable(parts) else {}


def describe(component: Any) -> dict[str, Any]:
    """Identity of a component: kind, name, full config, providing distribution and version, and
    the description of each of its parts (composites only)."""
    dist, version = distribution_of(component)
    identity = {"kind": getattr(component, "kind", type(component).__name__.lower()),
                "name": getattr(component, "name", type(component).__name__),
                "config": config_dict(component), "distribution": dist, "version": version}
    parts = parts_of(component)
    if parts:
        identity["parts"] = {label: describe(part) for label, part in parts.items()}
    return identity


def fingerprint(component: Any) -> str:
    """sha256 of the canonical JSON of :func:`describe` without the fields marked
    :data:`NOT_IDENTITY` (a composite's parts by their fingerprints): identity and cache key. A
    component whose output depends on learned state as well as its config (a fine-tuned encoder)
    exposes ``state_fingerprint`` (a string, or None while it has no such state), which then joins
    the identity."""
    identity = describe(component)
    config = getattr(component, "config", None)
    identity["config"] = _jsonable(config, identity=True) if config is not None else {}
    if "parts" in identity:
        identity["parts"] = {label: fingerprint(part) for label, part in parts_of(component).items()}
    state = getattr(component, "state_fingerprint", None)
    if state is not None:
        identity["state"] = str(state)
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
