"""embedlab-bidr: BiDR (Xiao et al., WWW 2022), a two-tier index and the training of its tiers.

``bidr`` (index): compact codes in memory (by default the core's PQ compressor ``pq``, or any
installed compressor through ``use_compressor``) find the top-N candidates; the full-precision
float32 vectors stay in a memory-mapped ``.npy`` file on disk and re-score only those candidates.
:mod:`embedlab_bidr.contrastive`: BiDR's contrastive quantisation of the codebooks (stage 1, on
frozen vectors). ``locality`` (kind ``negatives`` of embedlab-train, registered when it is
installed): BiDR's locality-centric sampling for training the dense embeddings (stage 2).
"""

from __future__ import annotations

from importlib.util import find_spec
from typing import Any

import embedlab
from embedlab_bidr.index import BiDRIndex
from embedlab_bidr.vectors import VectorFile

EMBEDLAB_API_VERSION = "1.1"


def locality_sampler(config: Any = None, /, **params: Any) -> Any:
    """BiDR's locality-centric sampling (:class:`embedlab_bidr.locality.LocalitySampler`; imported
    on use, as it needs embedlab-train and torch)."""
    from embedlab_bidr.locality import LocalitySampler

    return LocalitySampler(config, **params)


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``bidr`` index and, with embedlab-train installed, the ``locality`` sampler."""
    registry.add("index", "bidr", BiDRIndex)
    if find_spec("embedlab_train") is not None:
        registry.add("negatives", "locality", locality_sampler,
                     description="BiDR's locality-centric sampling: batches that walk the query-candidate graph")


__all__ = ["EMBEDLAB_API_VERSION", "BiDRIndex", "VectorFile", "embedlab_register", "locality_sampler"]
