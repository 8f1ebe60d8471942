"""embedlab-sitemb: situated chunk embeddings (SitEmb, arXiv 2508.01959), training-free.

Registers the retriever ``situated`` (:mod:`embedlab_sitemb.situated`: chunks encoded with their
document's context by a prefix or late chunking, optionally fused with the plain chunk score) and
the dataset ``sitemb-bios`` (:mod:`embedlab_sitemb.bios`: biographies whose sentences say "she"/"he").
"""

from __future__ import annotations

import embedlab
from embedlab_sitemb.bios import sitemb_bios
from embedlab_sitemb.situated import MODES, SituatedRetriever, late_chunked, prefixed

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``situated`` retriever and the ``sitemb-bios`` dataset."""
    registry.add("retriever", "situated", SituatedRetriever)
    registry.add("dataset", "sitemb-bios", sitemb_bios)


__all__ = ["EMBEDLAB_API_VERSION", "MODES", "SituatedRetriever", "embedlab_register", "late_chunked", "prefixed",
           "sitemb_bios"]
