"""embedlab-jpq: JPQ, Jointly optimizing query encoder and Product Quantization (Zhan et al., CIKM 2021).

Two components:

* the retriever ``jpq``: the paper's method, a query *encoder* (a Transformer, fine-tuned through
  embedlab-train's loop) trained jointly with the PQ centroids against the live index
  (:class:`JPQRetriever`, :mod:`embedlab_jpq.encoder_training`; needs the ``encoder`` extra);
* the compressor ``jpq``: product-quantisation codes from k-means (or FAISS OPQ + PQ) whose
  centroids, together with a linear map of (frozen) query vectors, are trained with the same loss
  (:meth:`JPQCompressor.train`). It is a :class:`embedlab.CodeScorer`, so the core
  :class:`embedlab.index.ExactIndex` searches its codes directly (``use_compressor``).

:mod:`embedlab_jpq.torch_pq` (differentiable PQ with frozen assignments) and
:mod:`embedlab_jpq.query_map` are public for reuse.
"""

from __future__ import annotations

import embedlab
from embedlab_jpq.compressor import JPQCompressor
from embedlab_jpq.retriever import JPQRetriever
from embedlab_jpq.torch_pq import FloatDocuments, FrozenPQ
from embedlab_jpq.training import relevant_positions

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``jpq`` compressor and the ``jpq`` retriever (plugin API 1.1)."""
    registry.add("compressor", "jpq", JPQCompressor)
    registry.add("retriever", "jpq", JPQRetriever)


__all__ = ["EMBEDLAB_API_VERSION", "FloatDocuments", "FrozenPQ", "JPQCompressor", "JPQRetriever", "embedlab_register",
           "relevant_positions"]
