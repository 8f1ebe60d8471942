"""embedlab-faiss: any FAISS index built from a factory string, as the embedlab index ``faiss``."""

from __future__ import annotations

import embedlab
from embedlab_faiss.index import FaissIndex

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``faiss`` index."""
    registry.add("index", "faiss", FaissIndex)


__all__ = ["EMBEDLAB_API_VERSION", "FaissIndex", "embedlab_register"]
