"""embedlab-muvera: MUVERA Fixed Dimensional Encodings (Dhulipala et al., NeurIPS 2024) and the
``muvera`` index (MIPS over FDEs through any installed index, exact Chamfer rerank)."""

from __future__ import annotations

import embedlab
from embedlab_muvera.fde import FDEConfig, encode_documents_fde, encode_queries_fde
from embedlab_muvera.index import MuveraConfig, MuveraIndex

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``muvera`` index."""
    registry.add("index", "muvera", MuveraIndex)


__all__ = ["EMBEDLAB_API_VERSION", "FDEConfig", "MuveraConfig", "MuveraIndex", "embedlab_register",
           "encode_documents_fde", "encode_queries_fde"]
