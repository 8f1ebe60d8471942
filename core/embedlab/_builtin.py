"""The core's own components, registered through the same hook as any plugin."""

from __future__ import annotations

from embedlab.hookspecs import hookimpl
from embedlab.plugins import API_VERSION

EMBEDLAB_API_VERSION = API_VERSION


@hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Exact index, metrics and built-in datasets."""
