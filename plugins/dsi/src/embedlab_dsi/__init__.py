"""embedlab-dsi: generative retrieval with a Differentiable Search Index (Tay et al., NeurIPS 2022).

The retriever ``dsi`` (:class:`DSIRetriever`) maps query text straight to document ids with a
small seq2seq model (a frozen MiniLM encoder's token states read by a Transformer decoder trained
here), decoded by beam search constrained to the trie of valid ids. The reusable parts are public:
:mod:`embedlab_dsi.docids` (semantic / naive / atomic ids; hierarchical k-means over any encoder's
vectors), :mod:`embedlab_dsi.trie` (prefix trie, constrained beam search), :mod:`embedlab_dsi.model`
and :mod:`embedlab_dsi.training` (embedlab-train's loop with the id cross-entropy).
"""

from __future__ import annotations

import embedlab
from embedlab_dsi.docids import Docids, atomic_ids, make_docids, naive_ids, semantic_ids, shared_prefix
from embedlab_dsi.retriever import DSIRetriever
from embedlab_dsi.trie import DocidTrie, beam_search

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``dsi`` retriever (plugin API 1.1)."""
    registry.add("retriever", "dsi", DSIRetriever)


__all__ = ["DSIRetriever", "DocidTrie", "Docids", "EMBEDLAB_API_VERSION", "atomic_ids", "beam_search",
           "embedlab_register", "make_docids", "naive_ids", "semantic_ids", "shared_prefix"]
