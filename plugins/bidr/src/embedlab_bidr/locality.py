"""BiDR's locality-centric sampling (stage 2, the dense embeddings) as an embedlab-train sampler.

BiDR (Xiao et al., WWW 2022; official code microsoft/BiDR, ``dataset/dataloader.py``) trains the
dense re-scoring embeddings to discriminate *locally*: among the documents the first stage already
put in a query's candidate list. It builds a bipartite proximity graph from a first stage's top-N
(queries linked to their non-relevant candidates) and fills each batch by walking it: from a query
to one of its candidate negatives, then to another query that has that document among *its*
candidates (random walk), or to all of them (snowball, breadth first). Every example brings its
positive and that negative, and all other in-batch documents are negatives too, so the batch's
negatives are concentrated around the same region of the embedding space.

Here it is the ``negatives`` component ``locality`` of embedlab-train (needs it installed): the
candidates come from any first stage (``first_stage``; BiDR's *progressive* optimisation takes them
from its stage-1 PQ index), ``sample`` draws one uniform candidate negative per example and epoch,
and ``batches`` orders the examples by the walk and packs them (no two examples of one query or
positive in a batch). Use it as ``finetune``'s ``negatives = { name = "locality", ... }``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs
import numpy as np
from embedlab_train.context import TrainingContext
from embedlab_train.data import pack_batches
from embedlab_train.negatives import Mined

_v = attrs.validators


class LocalitySampler(Mined):
    """Locality-centric sampling: one negative per example from its query's first-stage candidates
    (ranks ``start`` to ``depth``, drawn uniformly each epoch) and batches that follow the
    query-document proximity graph (``walk="random"`` or ``"snowball"``)."""

    name = "locality"

    @attrs.frozen(kw_only=True)
    class Config(Mined.Config):
        """As ``mined`` (``first_stage``, ``count``, ``start``, ``depth``, ``sampling``; defaults:
        one uniform negative among the top 200, BiDR's N), plus ``walk``: ``"random"`` (depth first,
        one neighbour) or ``"snowball"`` (breadth first, every neighbour)."""

        depth: int = attrs.field(default=200, validator=[_v.instance_of(int), _v.ge(1)])
        sampling: str = attrs.field(default="uniform", validator=_v.in_(("top", "uniform")))
        walk: str = attrs.field(default="random", validator=_v.in_(("random", "snowball")))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._neighbours: dict[int, np.ndarray] = {}

    def prepare(self, context: TrainingContext) -> None:
        """Mine the candidates and index which examples have each document among their candidates."""
        super().prepare(context)
        assert self._candidates is not None
        data, holders = context.data, {}
        for e, q in enumerate(data.query.tolist()):
            for p in self._candidates.unjudged(data, q, self.config.start).tolist():
                holders.setdefault(p, []).append(e)
        self._neighbours = {p: np.asarray(es, dtype=np.int64) for p, es in holders.items()}

    def walk_order(self, negatives: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Every example once, in the order of walks over the graph: from an example to the
        examples whose candidates hold its negative; a new walk starts at a random unvisited
        example when one dead-ends."""
        n = len(negatives)
        visited = np.zeros(n, dtype=bool)
        order: list[int] = []
        for start in rng.permutation(n).tolist():
            if visited[start]:
                continue
            frontier = deque([start])
            visited[start] = True
            while frontier:
                current = frontier.pop() if self.config.walk == "random" else frontier.popleft()
                order.append(current)
                following = [e for e in self._neighbours.get(int(negatives[current, 0]), ()).tolist()
                             if not visited[e]] if negatives.shape[1] else []
                if not following:
                    continue
                if self.config.walk == "random":
                    following = [following[int(rng.integers(len(following)))]]
                else:
                    following = [following[i] for i in rng.permutation(len(following)).tolist()]
                for e in following:
                    visited[e] = True
                    frontier.append(e)
        return np.asarray(order, dtype=np.int64)

    def batches(self, context: TrainingContext, epoch: int, negatives: np.ndarray,
                batch_size: int) -> list[np.ndarray]:
        rng = np.random.default_rng([context.seed, epoch, 2])
        return pack_batches(context.data, self.walk_order(negatives, rng), batch_size)
