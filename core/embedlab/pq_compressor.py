"""``pq``: plain product quantisation (:mod:`embedlab.pq`) as a compressor with ADC scoring.

The baseline every learned quantiser (JPQ, Distill-VQ) starts from, and the default in-memory
codes of two-tier indexes (embedlab-bidr)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.errors import InvalidInputError, NotFittedError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.pq import Codebooks, train_codebooks

_v = attrs.validators
_int = _v.instance_of(int)


class PQCompressor(Component):
    """k-means PQ: ``m`` sub-vectors, each replaced by the id of one of ``ksub`` centroids.

    A :class:`embedlab.CodeScorer`: ``score`` sums per-query lookup tables (inner product with the
    decoded vectors) without decoding the corpus.

    >>> pq = PQCompressor(m=2, ksub=16).fit(np.random.default_rng(0).normal(size=(500, 8)))
    >>> pq.encode(np.zeros((1, 8))).shape
    (1, 2)
    """

    kind = "compressor"
    name = "pq"

    @attrs.frozen
    class Config:
        """``m``: subspaces (must divide the dimension; bytes per vector for ``ksub <= 256``);
        ``ksub``: centroids per subspace; ``iterations``: k-means iterations; ``seed``."""

        m: int = attrs.field(default=32, validator=[_int, _v.ge(1)])
        ksub: int = attrs.field(default=256, validator=[_int, _v.ge(2), _v.le(65536)])
        iterations: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._books: Codebooks | None = None

    def fit(self, vectors: np.ndarray) -> PQCompressor:
        """k-means in every subspace of ``vectors`` (needs at least ``ksub`` rows)."""
        c = self.config
        self._books = train_codebooks(vectors, m=c.m, ksub=c.ksub, seed=c.seed, iterations=c.iterations)
        return self

    @property
    def codebooks(self) -> Codebooks:
        if self._books is None:
            raise NotFittedError("pq: call fit(vectors) first")
        return self._books

    @property
    def bytes_per_vector(self) -> float:
        return float(self.codebooks.bytes_per_vector)

    @property
    def memory_bytes(self) -> int:
        """Bytes of the centroids."""
        return int(self.codebooks.centroids.nbytes)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        return self.codebooks.encode(vectors)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.codebooks.decode(codes)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Inner product of every query with every decoded code, by lookup tables."""
        return self.codebooks.scores(queries, codes, "ip")

    def save(self, path: str | Path) -> None:
        save_state(path, self, arrays={"centroids": self.codebooks.centroids})

    @classmethod
    def load(cls, path: str | Path) -> PQCompressor:
        state = load_state(path, kind=cls.kind, name=cls.name)
        pq = cls(**state.config)
        if "centroids" not in state.arrays:
            raise StateError(f"{path}: saved pq state lacks centroids.npy")
        try:
            pq._books = Codebooks(state.arrays["centroids"])
        except InvalidInputError as error:
            raise StateError(f"{path}: {error}") from None
        return pq
