"""embedlab-fastrp: FastRP, "Fast and Accurate Network Embeddings via Very Sparse Random Projection"
(Chen, Sultan, Tian, Chen, Skiena; CIKM 2019).

One graph encoder, ``fastrp``: node vectors from a very sparse random projection of the powers of the
(degree-weighted) transition matrix, combined with weights and standardised. Pure numpy/scipy.
"""

from __future__ import annotations

import embedlab
from embedlab_fastrp.fastrp import FastRP, fastrp_embedding, sparse_projection

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``fastrp`` graph encoder."""
    registry.add("encoder", "fastrp", FastRP)


__all__ = ["EMBEDLAB_API_VERSION", "FastRP", "embedlab_register", "fastrp_embedding", "sparse_projection"]
