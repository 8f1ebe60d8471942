"""Seeded integer hash functions for tables (torch int64 arithmetic, identical in every process)."""

from __future__ import annotations

import numpy as np
import torch

#: A prime below 2**31 (the modulus of ROBE's universal hashing in the benchmark's code).
PRIME = 2_038_074_743


def universal_parameters(count: int, seed: int) -> np.ndarray:
    """``count`` pairs ``(a, b)`` with ``1 <= a, b < PRIME`` for ``h(x) = ((a x + b) mod PRIME)``."""
    rng = np.random.default_rng(seed)
    return rng.integers(1, PRIME, size=(count, 2), dtype=np.int64)


def universal_hash(x: torch.Tensor, a: torch.Tensor | int, b: torch.Tensor | int, buckets: torch.Tensor | int
                   ) -> torch.Tensor:
    """``((a x + b) mod PRIME) mod buckets`` for non-negative int64 ``x`` (< 2**32)."""
    return torch.remainder(torch.remainder(a * x + b, PRIME), buckets)


def primes_at_least(low: int, count: int) -> np.ndarray:
    """The first ``count`` primes >= ``low`` (segmented sieve)."""
    span = max(1024, count * 40)
    out: list[int] = []
    start = low
    while len(out) < count:
        stop = start + span
        is_prime = np.ones(stop - start, dtype=bool)
        limit = int(np.sqrt(stop)) + 1
        small = np.ones(limit + 1, dtype=bool)
        small[:2] = False
        for p in range(2, int(np.sqrt(limit)) + 1):
            if small[p]:
                small[p * p::p] = False
        for p in np.flatnonzero(small):
            first = max(p * p, -(-start // p) * p)
            is_prime[first - start::p] = False
        if start <= 1:
            is_prime[:2 - start] = False
        out.extend((np.flatnonzero(is_prime) + start).tolist())
        start = stop
    return np.asarray(out[:count], dtype=np.int64)
