"""node2vec (Grover & Leskovec, KDD 2016) and DeepWalk (Perozzi et al., KDD 2014): skip-gram
(gensim's ``Word2Vec``) over random walks from every node (:mod:`embedlab_node2vec.walks`).

Defaults follow each paper: node2vec 10 walks of length 80 per node, window 10, negative sampling;
DeepWalk 80 walks of length 40, window 10, hierarchical softmax (the FastRP paper's DeepWalk run).
"""

from __future__ import annotations

import zlib
from typing import Any

import attrs
import numpy as np

from embedlab.components import NOT_IDENTITY
from embedlab.graph import Graph, NodeEncoder
from embedlab.graph.walks import Walker


def _positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _count(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _stable_hash(text: str) -> int:
    """gensim seeds each word's initial vector with ``hashfxn(word + str(seed))``; Python's ``hash`` of a
    string changes between processes, so use a stable one (same seed, same vectors, every run)."""
    return zlib.crc32(text.encode())


class Node2Vec(NodeEncoder):
    """node2vec: second-order (``p``, ``q``) random walks + skip-gram with negative sampling."""

    name = "node2vec"

    @attrs.frozen
    class Config:
        dim: int = attrs.field(default=128, validator=_count)
        walks_per_node: int = attrs.field(default=10, validator=_count)
        walk_length: int = attrs.field(default=80, validator=_count)
        window: int = attrs.field(default=10, validator=_count)
        #: Return parameter: 1/p weights stepping back to the previous node.
        p: float = attrs.field(default=1.0, converter=float, validator=_positive)
        #: In-out parameter: 1/q weights moving away from the previous node's neighbourhood.
        q: float = attrs.field(default=1.0, converter=float, validator=_positive)
        epochs: int = attrs.field(default=1, validator=_count)
        #: Negative samples per positive pair (0 with hierarchical softmax).
        negative: int = attrs.field(default=5, validator=attrs.validators.ge(0))
        hierarchical_softmax: bool = False
        seed: int = 0
        #: gensim worker threads (several make training non-deterministic).
        workers: int = attrs.field(default=1, validator=_count, metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if not self.hierarchical_softmax and self.negative == 0:
                raise ValueError("negative = 0 needs hierarchical_softmax = true (no training signal otherwise)")

    def walks(self, graph: Graph) -> np.ndarray:
        """``(walks_per_node * n, walk_length)`` walks; each round starts once from every node, in a
        fresh random order."""
        rng = np.random.default_rng(self.config.seed)
        walker = Walker(graph.adjacency)
        rounds = [walker.walks(rng.permutation(graph.n_nodes), self.config.walk_length, rng, self.config.p,
                               self.config.q) for _ in range(self.config.walks_per_node)]
        return np.concatenate(rounds)

    def embed(self, graph: Graph) -> np.ndarray:
        from gensim.models import Word2Vec

        tokens = [str(i) for i in range(graph.n_nodes)]
        sentences = [[tokens[v] for v in walk] for walk in self.walks(graph).tolist()]
        config = self.config
        model = Word2Vec(sentences, vector_size=config.dim, window=config.window, min_count=0, sg=1,
                         hs=int(config.hierarchical_softmax), negative=config.negative, epochs=config.epochs,
                         workers=config.workers, seed=config.seed, hashfxn=_stable_hash)
        return np.stack([model.wv[token] for token in tokens])


class DeepWalk(Node2Vec):
    """DeepWalk: uniform random walks (node2vec with p = q = 1) + skip-gram with hierarchical softmax."""

    name = "deepwalk"

    @attrs.frozen
    class Config(Node2Vec.Config):
        walks_per_node: int = attrs.field(default=80, validator=_count)
        walk_length: int = attrs.field(default=40, validator=_count)
        negative: int = attrs.field(default=0, validator=attrs.validators.ge(0))
        hierarchical_softmax: bool = True
