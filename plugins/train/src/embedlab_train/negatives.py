"""Negative samplers: the ``negatives`` component kind. A sampler gives every training example
``count`` hard-negative corpus positions per epoch (in-batch negatives come for free from the
batch); judged positives of the example's query are never returned.

A new sampler subclasses :class:`NegativeSampler`, mines what it needs in :meth:`prepare` (for
example ``context.candidates(first_stage, depth)``) and implements :meth:`sample`.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.errors import InvalidInputError
from embedlab.retrievers import saved_state_digest
from embedlab_train.context import Candidates, TrainingContext, first_stage_spec
from embedlab_train.data import TrainingSet

_v = attrs.validators
_int = _v.instance_of(int)


class NegativeSampler(Component):
    """Hard negatives for each training example (plugin-extensible component kind ``negatives``)."""

    kind = "negatives"

    @property
    def count(self) -> int:
        """Negatives per example (0: in-batch negatives only)."""
        return 0

    def prepare(self, context: TrainingContext) -> None:
        """Called once before training (mine candidates here). Default: nothing."""

    def sample(self, context: TrainingContext, epoch: int, rng: np.random.Generator) -> np.ndarray:
        """``(len(context.data), count)`` int64 corpus positions for ``epoch`` (``rng`` is seeded by
        the run's seed and the epoch, so a resumed run draws the same negatives)."""
        return np.zeros((len(context.data), 0), dtype=np.int64)

    def batches(self, context: TrainingContext, epoch: int, negatives: np.ndarray,
                batch_size: int) -> list[np.ndarray] | None:
        """The batches of ``epoch`` (example indices, every example once) when the sampler composes
        them too (BiDR's locality-centric sampling walks from a query to its negative's other
        queries), given this epoch's ``negatives``; it must depend only on the seed and ``epoch``.
        Default None: the loop's seeded random batches (:func:`embedlab_train.data.epoch_batches`)."""
        return None


class InBatch(NegativeSampler):
    """No hard negatives: each query's negatives are the other examples' positives in its batch."""

    name = "in-batch"


def random_unjudged(data: TrainingSet, query: int, exclude: set[int], count: int,
                    rng: np.random.Generator) -> list[int]:
    """``count`` distinct random corpus positions that are not judged for ``query`` nor in
    ``exclude`` (fewer when the corpus has fewer)."""
    banned = data.judged[query] | exclude
    available = len(data.corpus) - len(banned)
    picked: list[int] = []
    while len(picked) < min(count, available):
        p = int(rng.integers(len(data.corpus)))
        if p not in banned:
            banned = banned | {p}
            picked.append(p)
    return picked


class Mined(NegativeSampler):
    """Hard negatives mined from a first stage (any installed encoder + index: ``bm25``, the
    zero-shot encoder with ``exact`` or ``faiss``, a saved index ``{ load = "<directory>" }``...):
    per example, ``count`` of its query's candidates ranked ``start`` to ``depth`` that are not
    judged relevant, the best ones
    (``sampling="top"``) or drawn uniformly anew each epoch (``"uniform"``); padded with random
    unjudged documents when too few remain (KaLM-Embedding's recipe: ranks 50-100, uniform)."""

    name = "mined"

    @attrs.frozen(kw_only=True)
    class Config:
        """``first_stage``: encoder name or ``{encoder = ..., index = ...}`` (default zero-shot
        ``minilm`` + exact search); ``count``: negatives per example; ``start``, ``depth``: the
        candidate ranks used (0-based, ``start`` < ``depth``); ``sampling``: ``top`` or ``uniform``."""

        first_stage: Any = attrs.field(default="minilm", converter=first_stage_spec)
        count: int = attrs.field(default=1, validator=[_int, _v.ge(1)])
        start: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        depth: int = attrs.field(default=30, validator=[_int, _v.ge(1)])
        sampling: str = attrs.field(default="top", validator=_v.in_(("top", "uniform")))

        def __attrs_post_init__(self) -> None:
            if self.start >= self.depth:
                raise ValueError(f"start ({self.start}) must be below depth ({self.depth})")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._candidates: Candidates | None = None

    @property
    def count(self) -> int:
        return self.config.count

    @property
    def state_fingerprint(self) -> str | None:
        """The saved states the first stage loads (``{ load = "<directory>" }`` stages, e.g. a
        trained stage-1 index), by their manifests' sha256: part of the fingerprint, so retraining
        the saved first stage changes the training run's identity. None when it loads none."""
        return saved_state_digest(self.config.first_stage)

    def prepare(self, context: TrainingContext) -> None:
        self._candidates = context.candidates(self.config.first_stage, self.config.depth)

    def sample(self, context: TrainingContext, epoch: int, rng: np.random.Generator) -> np.ndarray:
        assert self._candidates is not None, "prepare() first"
        data, config = context.data, self.config
        pools = {q: self._candidates.unjudged(data, q, config.start) for q in np.unique(data.query).tolist()}
        out = np.empty((len(data), config.count), dtype=np.int64)
        for e, q in enumerate(data.query.tolist()):
            pool = pools[q]
            if config.sampling == "uniform" and len(pool) > config.count:
                picked = rng.choice(pool, config.count, replace=False).tolist()
            else:
                picked = pool[:config.count].tolist()
            picked += random_unjudged(data, q, set(picked), config.count - len(picked), rng)
            if len(picked) < config.count:
                raise InvalidInputError(f"mined: query {data.queries.ids[q]!r} has only {len(picked)} documents "
                                        f"that are not judged relevant to it; lower count ({config.count})")
            out[e] = picked
        return out
