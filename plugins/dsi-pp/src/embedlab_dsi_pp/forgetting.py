"""Continual-learning measures over increments (DSI++ section 3, after Chaudhry et al. / Mirzadeh et al.).

``scores[t][i]``: a quality measure (Hits@k of corpus ``D_i``'s queries, or its indexing accuracy)
after training step ``t`` (step 0 indexes ``D_0``, step ``t`` adds ``D_t``), defined for ``i <= t``.

* average performance ``A_t`` = mean over ``i <= t`` of ``scores[t][i]``;
* learning accuracy ``LA_t`` = mean over ``i <= t`` of ``scores[i][i]`` (right after learning ``D_i``);
* forgetting ``F_t`` = mean over ``i < t`` of ``max_{t' < t} scores[t'][i] - scores[t][i]``.
"""

from __future__ import annotations

import attrs
import numpy as np


@attrs.frozen
class ContinualScores:
    """A lower-triangular table of scores (see the module docstring)."""

    scores: tuple[tuple[float, ...], ...] = attrs.field(
        converter=lambda rows: tuple(tuple(map(float, r)) for r in rows))

    def __attrs_post_init__(self) -> None:
        for t, row in enumerate(self.scores):
            if len(row) != t + 1:
                raise ValueError(f"continual scores: step {t} needs {t + 1} scores (corpora 0..{t}), got {len(row)}")

    def average(self, t: int) -> float:
        return float(np.mean(self.scores[t]))

    def learning_accuracy(self, t: int) -> float:
        return float(np.mean([self.scores[i][i] for i in range(t + 1)]))

    def forgetting(self, t: int) -> float:
        if t == 0:
            return 0.0
        return float(np.mean([max(self.scores[s][i] for s in range(i, t)) - self.scores[t][i] for i in range(t)]))
