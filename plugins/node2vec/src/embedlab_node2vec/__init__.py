"""embedlab-node2vec: the random-walk baselines node2vec (Grover & Leskovec, 2016) and DeepWalk
(Perozzi et al., 2014), with numpy-vectorised walks and gensim's skip-gram.

Graph encoders ``node2vec`` and ``deepwalk``.
"""

from __future__ import annotations

import embedlab
from embedlab_node2vec.encoder import DeepWalk, Node2Vec

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``node2vec`` and ``deepwalk`` graph encoders."""
    registry.add("encoder", "node2vec", Node2Vec)
    registry.add("encoder", "deepwalk", DeepWalk)


__all__ = ["EMBEDLAB_API_VERSION", "DeepWalk", "Node2Vec", "embedlab_register"]
