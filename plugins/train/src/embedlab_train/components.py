"""The component kinds embedlab-train declares, and building them from TOML-style specs."""

from __future__ import annotations

from typing import Any, Mapping

from embedlab.errors import ConfigError

#: kind -> description, as listed by ``embedlab plugins``.
KINDS = {
    "loss": "training objectives of embedlab-train (InfoNCE and what reduces to it)",
    "negatives": "hard-negative samplers of embedlab-train (in-batch, mined from a first stage, ...)",
    "pair-filter": "training-pair filters of embedlab-train (drop noisy (query, positive) pairs)",
    "pooling-head": "trainable poolers over a frozen encoder's hidden states (embedlab-train's frozen-head encoder)",
}


def component_spec(value: Any, what: str) -> str | dict[str, Any]:
    """attrs converter: a component name or a ``{name = ..., ...}`` table (copied)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return dict(value)
    raise ValueError(f"{what} must be a name or a table with a string 'name', got {value!r}")


def filter_specs(value: Any) -> tuple[str | dict[str, Any], ...]:
    """attrs converter for ``filters``: a list of names or tables."""
    if isinstance(value, (str, Mapping)):
        value = [value]
    return tuple(component_spec(v, "each filter") for v in value)


def create(kind: str, spec: str | Mapping[str, Any]) -> Any:
    """Build the ``kind`` component named by ``spec`` through the registry (unknown names raise
    UnknownComponentError listing what is installed)."""
    from embedlab.pipeline import create_component

    component = create_component(kind, spec)
    if getattr(component, "kind", None) != kind:
        raise ConfigError(f"{kind} {spec!r} built a {type(component).__name__}, not a {kind} component")
    return component


def create_loss(spec: str | Mapping[str, Any]) -> Any:
    return create("loss", spec)
