"""Seeded row samples: which rows of a large set a fit (PQ, IVF, a reducer, a learned index) reads."""

from __future__ import annotations

import numpy as np


def sample_positions(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a seeded sample of ``size`` rows among ``n``, drawn without replacement
    (all rows, ``arange(n)``, when ``n <= size``): the same seed and sizes give the same rows.

    >>> sample_positions(10, 3, seed=0).tolist()
    [5, 6, 9]
    >>> sample_positions(3, 5).tolist()
    [0, 1, 2]
    """
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))
