"""The ``irwe`` graph encoder: trains IRWE's attention units on a graph (``fit_graph``) and embeds
the nodes of any graph with the trained weights (``transform``: the inductive setting).

``output`` picks what ``encode_*`` return: ``"identity"`` (structural roles), ``"position"``
(communities / proximity) or ``"both"`` (the two concatenated, each standardised).
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from embedlab.components import NOT_IDENTITY
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.graph import Graph, NodeEncoder
from embedlab.graph.walks import Walker
from embedlab.threads import torch_threads
from embedlab_irwe.features import AnonymousWalks, anchor_reachability

OUTPUTS = ("both", "identity", "position")


def _count(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)


@attrs.define
class _Inputs:
    """Walk statistics of one graph, as the units take them."""

    walk_ids: np.ndarray       # (n, identity_walks) anonymous-walk ids
    distribution: np.ndarray   # (n, n_patterns) empirical anonymous-walk distribution
    log_degree: np.ndarray     # (n, 1)
    walks: np.ndarray          # (n, position_walks, walk_length) node positions
    reach: np.ndarray          # (n, anchors)


class IRWE(NodeEncoder):
    """IRWE: identity and position embeddings from random-walk statistics, two attention units
    trained jointly; inductive (no node-id parameters)."""

    name = "irwe"

    @attrs.frozen
    class Config:
        #: Width of each embedding (``output = "both"`` returns 2 * dim columns).
        dim: int = attrs.field(default=64, validator=_count)
        output: str = attrs.field(default="both", validator=attrs.validators.in_(OUTPUTS))
        #: Nodes per anonymous walk (5 nodes: 15 patterns without immediate self-loops).
        anonymous_length: int = attrs.field(default=5, validator=attrs.validators.in_((3, 4, 5, 6)))
        #: Anonymous walks per node fed to the identity unit, and walks for its target distribution.
        identity_walks: int = attrs.field(default=32, validator=_count)
        distribution_walks: int = attrs.field(default=256, validator=_count)
        #: Walks per node (and their length) fed to the position unit.
        position_walks: int = attrs.field(default=4, validator=_count)
        walk_length: int = attrs.field(default=8, validator=attrs.validators.ge(2))
        window: int = attrs.field(default=4, validator=_count)
        #: Highest-degree nodes whose reachability places the others (at most half the graph's nodes).
        anchors: int = attrs.field(default=32, validator=_count)
        anchor_steps: int = attrs.field(default=4, validator=_count)
        negatives: int = attrs.field(default=5, validator=_count)
        heads: int = attrs.field(default=2, validator=_count)
        epochs: int = attrs.field(default=100, validator=_count)
        lr: float = attrs.field(default=5e-3, converter=float)
        #: Nodes per optimisation step (all nodes are encoded; the losses use this many sources).
        batch_size: int = attrs.field(default=512, validator=_count)
        seed: int = 0
        num_threads: int | None = attrs.field(default=1, metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if self.dim % self.heads:
                raise ValueError(f"dim ({self.dim}) must be divisible by heads ({self.heads})")
            if self.walk_length < self.anonymous_length:
                raise ValueError(f"walk_length ({self.walk_length}) must be >= anonymous_length "
                                 f"({self.anonymous_length})")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._model: Any = None
        self._anchor_ids: np.ndarray | None = None
        self.losses: list[float] = []

    @property
    def dim(self) -> int:
        return 2 * self.config.dim if self.config.output == "both" else self.config.dim

    # -- features ---------------------------------------------------------------------------------
    def _inputs(self, graph: Graph, rng: np.random.Generator, fixed: _Inputs | None = None) -> _Inputs:
        """Walk statistics of ``graph``; with ``fixed``, only the sampled walks are drawn anew (the
        distributions and reachabilities are kept)."""
        config = self.config
        walker = Walker(graph.adjacency)
        nodes = np.arange(graph.n_nodes)
        anonymous = AnonymousWalks(config.anonymous_length)
        sampled = walker.walks(np.repeat(nodes, config.identity_walks), config.anonymous_length, rng)
        walk_ids = anonymous.ids(sampled).reshape(graph.n_nodes, config.identity_walks)
        walks = walker.walks(np.repeat(nodes, config.position_walks), config.walk_length, rng)
        walks = walks.reshape(graph.n_nodes, config.position_walks, config.walk_length)
        if fixed is not None:
            return attrs.evolve(fixed, walk_ids=walk_ids, walks=walks)
        many = anonymous.ids(walker.walks(np.repeat(nodes, config.distribution_walks), config.anonymous_length, rng))
        counts = np.zeros((graph.n_nodes, anonymous.size))
        np.add.at(counts, (np.repeat(nodes, config.distribution_walks), many), 1.0)
        anchors = graph.positions(self._anchor_ids.tolist(), "anchor nodes (IRWE's position reference)")
        return _Inputs(walk_ids, counts / config.distribution_walks, np.log1p(graph.degrees)[:, None], walks,
                       anchor_reachability(graph, anchors, config.anchor_steps))

    # -- training ---------------------------------------------------------------------------------
    def embed(self, graph: Graph) -> np.ndarray:
        """Train both units on ``graph`` (anchors: its highest-degree nodes), then embed it."""
        import torch

        from embedlab_irwe.model import IdentityUnit, PositionUnit, skipgram_loss

        config = self.config
        if graph.n_nodes < 4:
            raise InvalidInputError(f"irwe: graph {graph.name!r} has {graph.n_nodes} nodes; it needs at least 4")
        rng = np.random.default_rng(config.seed)
        order = np.lexsort((np.arange(graph.n_nodes), -graph.degrees))
        n_anchors = min(config.anchors, graph.n_nodes // 2)  # a small graph gets half its nodes as anchors
        self._anchor_ids = graph.node_ids[np.sort(order[:n_anchors])]
        with torch_threads(config.num_threads):
            torch.manual_seed(config.seed)
            identity = IdentityUnit(AnonymousWalks(config.anonymous_length).size, config.dim, config.heads)
            position = PositionUnit(n_anchors, config.dim, config.heads, config.walk_length)
            self._model = (identity, position)
            optimiser = torch.optim.Adam([*identity.parameters(), *position.parameters()], lr=config.lr)
            self.losses = []
            inputs = self._inputs(graph, rng)
            for _ in range(config.epochs):
                inputs = self._inputs(graph, rng, inputs)  # fresh walks every epoch
                tensors = self._tensors(inputs)
                z_identity = identity(tensors["walk_ids"], tensors["log_degree"])
                z_position = position(tensors["walks"], tensors["reach"], z_identity)
                batch = torch.as_tensor(rng.choice(graph.n_nodes, size=min(config.batch_size, graph.n_nodes),
                                                   replace=False))
                sources, contexts = self._pairs(inputs.walks[batch.numpy()], rng)
                negatives = torch.as_tensor(rng.integers(0, graph.n_nodes, size=(sources.size, config.negatives)))
                loss = identity.loss(z_identity[batch], tensors["distribution"][batch], tensors["log_degree"][batch]) \
                    + skipgram_loss(z_position, torch.as_tensor(sources), torch.as_tensor(contexts), negatives)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                self.losses.append(float(loss.detach()))
        return self.transform(graph)

    def _pairs(self, walks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(source, context) pairs: each walk's start and a node within ``window`` steps of it."""
        starts = walks[:, :, 0].ravel()
        offsets = rng.integers(1, min(self.config.window, self.config.walk_length - 1) + 1, size=starts.size)
        contexts = walks.reshape(-1, walks.shape[2])[np.arange(starts.size), offsets]
        return starts, contexts

    @staticmethod
    def _tensors(inputs: _Inputs) -> dict[str, Any]:
        import torch

        return {"walk_ids": torch.as_tensor(inputs.walk_ids), "log_degree": torch.as_tensor(inputs.log_degree,
                                                                                            dtype=torch.float32),
                "distribution": torch.as_tensor(inputs.distribution, dtype=torch.float32),
                "walks": torch.as_tensor(inputs.walks), "reach": torch.as_tensor(inputs.reach)}

    # -- inference ----------------------------------------------------------------------------------
    def transform(self, graph: Graph) -> np.ndarray:
        """Embed every node of ``graph`` with the trained units (no training): nodes unseen at
        training get vectors too. ``graph`` must contain the anchor nodes."""
        import torch

        if self._model is None:
            raise NotFittedError("irwe: call fit_graph(graph) before transform")
        self.check_graph(graph)
        identity, position = self._model
        with torch_threads(self.config.num_threads), torch.no_grad():
            tensors = self._tensors(self._inputs(graph, np.random.default_rng(self.config.seed + 1)))
            z_identity = identity(tensors["walk_ids"], tensors["log_degree"])
            z_position = position(tensors["walks"], tensors["reach"], z_identity)
        parts = {"identity": [z_identity], "position": [z_position], "both": [z_identity, z_position]}
        return np.hstack([_standardise(p.numpy().astype(np.float64)) for p in parts[self.config.output]])

    def identity_and_position(self, graph: Graph) -> tuple[np.ndarray, np.ndarray]:
        """Both embeddings of ``graph``'s nodes (standardised), whatever ``output`` says."""
        vectors = attrs.evolve(self.config, output="both")
        both = IRWE(vectors)
        both._model, both._anchor_ids = self._model, self._anchor_ids
        embedded = both.transform(graph)
        return embedded[:, :self.config.dim], embedded[:, self.config.dim:]
