"""embedlab-pyterrier: an embedlab pipeline as a PyTerrier transformer, and a PyTerrier transformer as
an embedlab first stage. The core never imports this package (nor pyterrier)."""

from __future__ import annotations

import embedlab
from embedlab_pyterrier.adapters import EmbedlabTransformer, PyTerrierRetriever

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """No registered components: both adapters wrap objects built in Python."""


__all__ = ["EMBEDLAB_API_VERSION", "EmbedlabTransformer", "PyTerrierRetriever", "embedlab_register"]
