"""``pq``: product quantisation (:mod:`embedlab.pq`) as a compressor with ADC scoring, plain
(k-means) or with FAISS's OPQ rotation.

The baseline every learned quantiser (JPQ, Distill-VQ) starts from, the default in-memory codes of
two-tier indexes (embedlab-bidr), and the holder of codebooks trained elsewhere
(:meth:`PQCompressor.use_codebooks`: BiDR's contrastive quantisation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab.pq import Codebooks, kmeans_trainer, opq_codebooks, train_codebooks, train_codebooks_from_chunks

_v = attrs.validators
_int = _v.instance_of(int)


class PQCompressor(Component):
    """k-means PQ: ``m`` sub-vectors, each replaced by the id of one of ``ksub`` centroids; with
    ``opq=True`` the vectors are first rotated by an orthonormal ``R`` trained with the codebooks
    (FAISS ``OPQ{m},PQ{m}``; needs faiss-cpu), and ``decode`` rotates back.

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
        ``ksub``: centroids per subspace; ``iterations``: k-means iterations; ``seed``; ``opq``:
        FAISS OPQ rotation and codebooks (``ksub`` a power of two)."""

        m: int = attrs.field(default=32, validator=[_int, _v.ge(1)])
        ksub: int = attrs.field(default=256, validator=[_int, _v.ge(2), _v.le(65536)])
        iterations: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        opq: bool = attrs.field(default=False, validator=_v.instance_of(bool))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._books: Codebooks | None = None
        self._rotation: np.ndarray | None = None

    def fit(self, vectors: np.ndarray) -> PQCompressor:
        """k-means in every subspace of ``vectors`` (needs at least ``ksub`` rows), after the OPQ
        rotation with ``opq=True``."""
        c = self.config
        if c.opq:
            self._rotation, self._books = opq_codebooks(vectors, m=c.m, ksub=c.ksub, seed=c.seed,
                                                        iterations=c.iterations)
        else:
            self._books = train_codebooks(vectors, m=c.m, ksub=c.ksub, seed=c.seed, iterations=c.iterations)
        return self

    def fit_from_chunks(self, chunks: Any, positions: np.ndarray) -> PQCompressor:
        """:meth:`fit` on the rows ``positions`` of a chunk store (:class:`embedlab.FitsFromChunks`):
        plain PQ reads one group of subspace columns of the sample at a time
        (:func:`embedlab.pq.train_codebooks_from_chunks`), the same codebooks as ``fit`` on the whole
        sample; OPQ's rotation mixes every dimension, so it reads the sample whole."""
        c = self.config
        if c.opq:
            return self.fit(as_dense(chunks.take(positions), name="pq training vectors"))
        self._books = train_codebooks_from_chunks(
            chunks, positions, m=c.m, trainer=kmeans_trainer(c.ksub, seed=c.seed, iterations=c.iterations))
        self._rotation = None
        return self

    def use_codebooks(self, centroids: np.ndarray) -> PQCompressor:
        """Encode and score with ``centroids`` (``(m, ksub, d/m)``, in the rotated space with
        ``opq=True``) from now on: codebooks trained elsewhere (BiDR's contrastive quantisation).
        The rotation is kept; codes must be made again with :meth:`encode`."""
        books = Codebooks(centroids)
        if books.centroids.shape != self.codebooks.centroids.shape:
            raise InvalidInputError(f"pq: centroids of shape {books.centroids.shape} do not fit this compressor's "
                                    f"{self.codebooks.centroids.shape}")
        self._books = books
        return self

    @property
    def rotation(self) -> np.ndarray | None:
        """The ``(d, d)`` OPQ rotation (codes are those of ``R x``), or None without ``opq``."""
        if self._books is None:
            raise NotFittedError("pq: call fit(vectors) first")
        return None if self._rotation is None else self._rotation.copy()

    def _rotate(self, x: np.ndarray) -> np.ndarray:
        if self._rotation is None:
            return x
        return np.ascontiguousarray(as_dense(x, dim=self._rotation.shape[0], allow_empty=True) @ self._rotation.T)

    @property
    def codebooks(self) -> Codebooks:
        if self._books is None:
            raise NotFittedError("pq: call fit(vectors) first")
        return self._books

    @property
    def bytes_per_vector(self) -> float:
        return float(self.codebooks.bytes_per_vector)

    @property
    def table_bytes_per_query(self) -> int:
        """Bytes of one query's lookup tables (the exact index sizes its query batches from it)."""
        return self.codebooks.table_bytes_per_query

    @property
    def memory_bytes(self) -> int:
        """Bytes of the centroids (and of the rotation)."""
        rotation = 0 if self._rotation is None else self._rotation.nbytes
        return int(self.codebooks.centroids.nbytes + rotation)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        return self.codebooks.encode(self._rotate(vectors))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        decoded = self.codebooks.decode(codes)
        return decoded if self._rotation is None else np.ascontiguousarray(decoded @ self._rotation)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Inner product of every query with every decoded code, by lookup tables."""
        return self.codebooks.scores(self._rotate(queries), codes, "ip")

    def query_scorer(self, queries: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
        """The lookup tables of ``queries`` built once, and ``codes -> (n_codes, n_queries)`` inner
        products with them (:class:`embedlab.PreparedCodeScorer`; ``score(queries, codes).T``)."""
        return self.codebooks.query_scorer(self._rotate(queries), "ip")

    def check_codes(self, codes: np.ndarray) -> np.ndarray:
        """``codes`` unchanged, or InvalidInputError unless they are valid centroid ids."""
        return self.codebooks.check_codes(codes)

    def save(self, path: str | Path) -> None:
        arrays = {"centroids": self.codebooks.centroids}
        if self._rotation is not None:
            arrays["rotation"] = self._rotation
        save_state(path, self, arrays=arrays)

    @classmethod
    def load(cls, path: str | Path) -> PQCompressor:
        state = load_state(path, kind=cls.kind, name=cls.name)
        pq = state.build(cls)
        centroids = state.array("centroids", dtype=np.float32, shape=(pq.config.m, pq.config.ksub, None),
                                finite=True)
        if centroids.shape[2] < 1:
            raise state.error("centroids.npy has sub-vectors of dimension 0")
        pq._books = Codebooks(centroids)
        dim = pq._books.dim
        rotation = state.optional_array("rotation", dtype=np.float32, shape=(dim, dim), finite=True)
        if pq.config.opq != (rotation is not None):
            raise state.error(f"rotation.npy is {'missing' if rotation is None else 'present'} "
                              f"but opq={pq.config.opq}")
        pq._rotation = None if rotation is None else np.array(rotation, dtype=np.float32)
        return pq
