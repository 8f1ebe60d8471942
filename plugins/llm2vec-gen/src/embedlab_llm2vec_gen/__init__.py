"""embedlab-llm2vec-gen: LLM2Vec-Gen (BehnamGhader et al., arXiv 2603.10913, 2026) at the scale of all-MiniLM-L6-v2.

The encoder ``llm2vec-gen`` (:class:`LLM2VecGenEncoder`) embeds a text by the final states of
trainable special tokens appended to a frozen encoder's input, trained so that a frozen generator's
decoder can rebuild, from those states alone, the generator's own response to the text
(reconstruction), and so that their projection matches a teacher's embedding of that response
(alignment). The generator is a small seq2seq model trained here (:mod:`embedlab_llm2vec_gen.generator`,
embedlab-dsi's decoder); the loss terms are in :mod:`embedlab_llm2vec_gen.losses`.
"""

from __future__ import annotations

import embedlab
from embedlab_llm2vec_gen.encoder import LLM2VecGenEncoder
from embedlab_llm2vec_gen.losses import alignment_loss, hardness_weighted_contrastive, reconstruction_loss

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the encoder ``llm2vec-gen`` (plugin API 1.1)."""
    registry.add("encoder", "llm2vec-gen", LLM2VecGenEncoder)


__all__ = ["EMBEDLAB_API_VERSION", "LLM2VecGenEncoder", "alignment_loss", "embedlab_register",
           "hardness_weighted_contrastive", "reconstruction_loss"]
