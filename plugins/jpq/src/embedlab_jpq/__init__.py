"""embedlab-jpq: JPQ, Jointly optimizing query encoder and Product Quantization (Zhan et al., CIKM 2021).

One compressor, ``jpq``: product-quantisation codes from k-means (or FAISS OPQ + PQ) whose
centroids, together with a linear map of the query vectors, are then trained with JPQ's pairwise
ranking loss against the live PQ index (:meth:`JPQCompressor.train`). It is a :class:`embedlab.CodeScorer`, so the core
:class:`embedlab.index.ExactIndex` searches its codes directly (``use_compressor``).
:mod:`embedlab_jpq.torch_pq` (differentiable PQ with frozen assignments) and
:mod:`embedlab_jpq.query_map` are public for reuse.
"""

from __future__ import annotations

import embedlab
from embedlab_jpq.compressor import JPQCompressor
from embedlab_jpq.torch_pq import FrozenPQ
from embedlab_jpq.training import relevant_positions

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``jpq`` compressor."""
    registry.add("compressor", "jpq", JPQCompressor)


__all__ = ["EMBEDLAB_API_VERSION", "FrozenPQ", "JPQCompressor", "embedlab_register", "relevant_positions"]
