"""CoRNStack's softmax hard-negative sampler with a temperature curriculum (``softmax``).

Each example's candidates are a first stage's top ``depth`` for its query, without judged documents
and, with ``drop_above_positive``, without the candidates ranked above the example's positive (the
first stage prefers them to the labelled answer: likely false negatives). Every epoch draws ``count``
of them without replacement with ``P(j) proportional to exp(s_j / tau_e)`` (the Gumbel-top-k trick),
``s`` the first stage's scores and ``tau_e = temperatures[min(e, len - 1)]``: a high temperature early
(close to uniform: diverse, easier negatives), lower ones later (close to the top ``count``: the
hardest); ``tau = 0`` is exactly the top ``count``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np
from embedlab_train import Mined, TrainingContext
from embedlab_train.negatives import random_unjudged

from embedlab.errors import InvalidInputError

_v = attrs.validators


def _temperatures(value: Any) -> tuple[float, ...]:
    values = (value,) if isinstance(value, (int, float)) and not isinstance(value, bool) else tuple(value)
    if not values or any(isinstance(t, bool) or not isinstance(t, (int, float)) or t < 0 for t in values):
        raise ValueError(f"temperatures must be numbers >= 0 (one per epoch, the last one repeats), got {value!r}")
    return tuple(float(t) for t in values)


def gumbel_top_k(scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of ``k`` draws without replacement with probabilities ``softmax(scores / temperature)``
    (``temperature = 0``: the top ``k``, ties by position)."""
    if temperature == 0:
        return np.argsort(-scores, kind="stable")[:k]
    keys = scores / temperature + rng.gumbel(size=scores.shape)
    return np.argsort(-keys, kind="stable")[:k]


class SoftmaxNegatives(Mined):
    """Hard negatives drawn by softmax over first-stage scores, temperature falling by epoch."""

    name = "softmax"

    @attrs.frozen(kw_only=True)
    class Config(Mined.Config):
        """``first_stage``, ``count``, ``start``, ``depth`` as ``mined`` (``depth`` = CoRNStack's M,
        default 100); ``temperatures``: one per epoch, the last repeated (on the first stage's score
        scale; cosine: 0.05 is sharp, 1.0 near uniform); ``drop_above_positive``."""

        depth: int = attrs.field(default=100, validator=[_v.instance_of(int), _v.ge(1)])
        temperatures: tuple[float, ...] = attrs.field(default=(0.1, 0.05, 0.02), converter=_temperatures)
        drop_above_positive: bool = attrs.field(default=True, validator=_v.instance_of(bool))

    def temperature(self, epoch: int) -> float:
        """The sampling temperature of ``epoch`` (0-based)."""
        temperatures = self.config.temperatures
        return temperatures[min(epoch, len(temperatures) - 1)]

    def pool(self, context: TrainingContext, example: int) -> tuple[np.ndarray, np.ndarray]:
        """Corpus positions and first-stage scores an example's negatives are drawn from."""
        assert self._candidates is not None
        data, config = context.data, self.config
        q, p = int(data.query[example]), int(data.positive[example])
        positions = self._candidates.positions[q]
        scores = self._candidates.scores[q]
        ranks = np.arange(len(positions))
        keep = (positions >= 0) & (ranks >= config.start)
        keep &= ~np.isin(positions, list(data.judged[q]))
        rank = self._candidates.rank_of(q, p)
        if config.drop_above_positive and rank < len(positions):  # the positive is among the candidates
            keep &= ranks > rank
        return positions[keep], scores[keep].astype(np.float64)

    def sample(self, context: TrainingContext, epoch: int, rng: np.random.Generator) -> np.ndarray:
        data, count = context.data, self.config.count
        temperature = self.temperature(epoch)
        out = np.empty((len(data), count), dtype=np.int64)
        for e, q in enumerate(data.query.tolist()):
            positions, scores = self.pool(context, e)
            picked = positions[gumbel_top_k(scores, count, temperature, rng)].tolist()
            ranked = set(self._candidates.positions[q].tolist()) if self._candidates is not None else set()
            picked += random_unjudged(data, q, set(picked) | ranked, count - len(picked), rng)
            if len(picked) < count:
                raise InvalidInputError(f"softmax: query {str(data.queries.ids[q])!r} has only {len(picked)} documents "
                                        f"usable as negatives; lower count ({count})")
            out[e] = picked
        return out
