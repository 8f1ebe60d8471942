"""Pair filters: the ``pair-filter`` component kind. A filter drops training examples (query,
positive pairs) before training, for example pairs whose positive a first stage or a teacher does
not rank near the top (noisy labels).

A new filter subclasses :class:`PairFilter` and implements :meth:`keep`; it may mine with
``context.candidates(first_stage, depth)`` like a negative sampler.
"""

from __future__ import annotations

import numpy as np

from embedlab.components import Component
from embedlab_train.context import TrainingContext


class PairFilter(Component):
    """Keeps or drops each training example (plugin-extensible component kind ``pair-filter``)."""

    kind = "pair-filter"

    def keep(self, context: TrainingContext) -> np.ndarray:
        """``(len(context.data),)`` booleans: True for the examples to train on."""
        raise NotImplementedError
