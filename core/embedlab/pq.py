"""Product quantisation shared by every PQ-based plugin (JPQ, Distill-VQ, BiDR...).

A vector of dimension ``d`` is cut into ``m`` sub-vectors of ``d / m`` dimensions; each sub-vector is
replaced by the index of its nearest centroid in that subspace's codebook of ``ksub`` centroids.
:class:`Codebooks` holds the centroids ``(m, ksub, d / m)`` and encodes, decodes and scores float
queries against codes through per-query lookup tables (asymmetric distance computation, ADC), never
decoding the corpus. Plugins train or fine-tune the centroids however they like (FAISS, k-means here,
a ranking loss in torch) and wrap the result in :class:`Codebooks`.

>>> books = train_codebooks(np.random.default_rng(0).normal(size=(1000, 8)), m=2, ksub=16, seed=0)
>>> books.encode(np.zeros((1, 8))).shape, books.bytes_per_vector
((1, 2), 2)
"""

from __future__ import annotations

from typing import Any, Callable

import attrs
import numpy as np

from embedlab.embeddings import as_dense
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.memory import release_freed_memory

#: Rows encoded per block, so large corpora need bounded temporary memory (one ``(BLOCK, ksub)``
#: float32 distance block at a time: 4 MiB for 256 centroids).
BLOCK = 4096
#: Codes scored per block: small enough that the block's scores stay in cache during the scan.
SCAN_BLOCK = 4096
#: Bytes of training-sample columns held at once by :func:`train_codebooks_from_chunks`.
SAMPLE_BYTES = 16 << 20

#: Trains the codebooks of a group of consecutive subspaces from the sample's columns of that
#: group: ``(columns (n, len(group) * dsub), group) -> centroids (len(group), ksub, dsub)``.
SubspaceTrainer = Callable[[np.ndarray, range], np.ndarray]


def check_subspaces(dim: int, m: int, owner: str = "pq") -> int:
    """Sub-vector dimension ``dim // m``; a clear error when ``m`` does not divide ``dim``."""
    if m < 1 or dim % m:
        divisors = [v for v in range(1, dim + 1) if dim % v == 0]
        raise ConfigError(f"{owner}: dimension {dim} is not divisible by m={m} subspaces; "
                          f"choose m among {divisors}")
    return dim // m


def check_training_size(n: int, needed: int, owner: str = "pq", what: str = "centroids per subspace") -> None:
    """A clear error when fewer than ``needed`` training vectors are given."""
    if n < needed:
        raise InvalidInputError(f"{owner}: fitting needs at least {needed} training vectors "
                                f"(one per {what}), got {n}; pass more vectors or lower the code size")


def code_dtype(ksub: int) -> np.dtype:
    """The smallest unsigned integer type holding centroid ids below ``ksub``."""
    return np.dtype(np.uint8) if ksub <= 256 else np.dtype(np.uint16)


@attrs.frozen(eq=False)
class Codebooks:
    """``centroids[j, c]`` is centroid ``c`` of subspace ``j``: float32 ``(m, ksub, dsub)``."""

    centroids: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.float32))

    def __attrs_post_init__(self) -> None:
        if self.centroids.ndim != 3 or 0 in self.centroids.shape:
            raise InvalidInputError(f"pq: centroids must have shape (m, ksub, dsub), got {self.centroids.shape}")
        if not np.isfinite(self.centroids).all():
            raise InvalidInputError("pq: centroids contain NaN or inf")
        if self.ksub > 65536:
            raise InvalidInputError(f"pq: at most 65536 centroids per subspace, got {self.ksub}")

    @property
    def m(self) -> int:
        return self.centroids.shape[0]

    @property
    def ksub(self) -> int:
        return self.centroids.shape[1]

    @property
    def dsub(self) -> int:
        return self.centroids.shape[2]

    @property
    def dim(self) -> int:
        return self.m * self.dsub

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of one stored code (``m`` centroid ids)."""
        return self.m * code_dtype(self.ksub).itemsize

    def encode(self, vectors: object) -> np.ndarray:
        """Nearest-centroid id per subspace (L2): ``(n, m)`` codes of :func:`code_dtype`."""
        x = as_dense(vectors, dim=self.dim, name="pq vectors", allow_empty=True)
        codes = np.empty((len(x), self.m), dtype=code_dtype(self.ksub))
        norms = np.einsum("jcd,jcd->jc", self.centroids, self.centroids)
        for start in range(0, len(x), BLOCK):
            block = x[start:start + BLOCK].reshape(-1, self.m, self.dsub)
            for j in range(self.m):
                distances = block[:, j, :] @ self.centroids[j].T  # |c|^2 - 2 <x, c>, in place
                distances *= -2.0
                distances += norms[j]
                codes[start:start + len(block), j] = np.argmin(distances, axis=1)
        return codes

    def check_codes(self, codes: object) -> np.ndarray:
        """``codes`` as an ``(n, m)`` integer array of valid centroid ids, or a clear error."""
        array = np.asarray(codes)
        if array.ndim != 2 or array.shape[1] != self.m:
            raise InvalidInputError(f"pq: codes must have shape (n, {self.m}), got {array.shape}")
        if not np.issubdtype(array.dtype, np.integer):
            raise InvalidInputError(f"pq: codes must be integers, got {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= self.ksub):
            raise InvalidInputError(f"pq: code values must lie in [0, {self.ksub}), "
                                    f"got [{array.min()}, {array.max()}]")
        return array

    def decode(self, codes: object) -> np.ndarray:
        """Reconstruction: the concatenated selected centroids, float32 ``(n, d)``."""
        codes = self.check_codes(codes)
        parts = [self.centroids[j][codes[:, j]] for j in range(self.m)]
        return np.ascontiguousarray(np.concatenate(parts, axis=1) if parts else np.empty((0, 0)), np.float32)

    def tables(self, queries: object, metric: str = "ip") -> np.ndarray:
        """Per query, subspace and centroid: inner product (``ip``) or negated squared L2 distance
        (``l2``) of the query's sub-vector with the centroid; ``(n_queries, m, ksub)``."""
        return self._tables(queries, metric, "qjc")

    def _tables(self, queries: object, metric: str, layout: str) -> np.ndarray:
        """:meth:`tables` written directly in ``layout`` (``qjc`` or ``jcq``: subspace, centroid, query)."""
        if metric not in ("ip", "l2"):
            raise ConfigError(f"pq: metric must be 'ip' or 'l2', got {metric!r}")
        q = as_dense(queries, dim=self.dim, name="pq queries", allow_empty=True).reshape(-1, self.m, self.dsub)
        out = np.einsum(f"qjd,jcd->{layout}", q, self.centroids)
        if metric == "l2":
            norms = np.einsum("jcd,jcd->jc", self.centroids, self.centroids)
            q_norms = np.einsum("qjd,qjd->qj", q, q)
            out *= 2.0
            if layout == "qjc":
                out -= norms[None]
                out -= q_norms[:, :, None]
            else:
                out -= norms[:, :, None]
                out -= q_norms.T[:, None, :]
        return out

    def scores(self, queries: object, codes: object, metric: str = "ip") -> np.ndarray:
        """ADC similarity of every query with every code, ``(n_queries, n_codes)`` float32:
        the sum over subspaces of table look-ups (equal to scoring ``decode(codes)``)."""
        return np.ascontiguousarray(self.query_scorer(queries, metric)(codes).T)

    def query_scorer(self, queries: object, metric: str = "ip") -> Callable[[object], np.ndarray]:
        """The lookup tables of ``queries`` built once, and a function scoring any block of codes
        with them: ``codes -> (n_codes, n_queries)`` float32 (documents-major; :meth:`scores`
        transposed). Scoring many blocks for one batch of queries builds the tables once."""
        # (m, ksub, n_queries): one look-up copies a contiguous row holding every query's entry,
        # so the scan runs code by code (as FAISS does) instead of gathering scattered floats;
        # written in that layout directly (no second copy of the tables).
        rows = np.ascontiguousarray(self._tables(queries, metric, "jcq"))

        def score(codes: object) -> np.ndarray:
            codes = self.check_codes(codes)
            out = np.zeros((len(codes), rows.shape[2]), dtype=np.float32)
            for start in range(0, len(codes), SCAN_BLOCK):
                block = codes[start:start + SCAN_BLOCK]
                target = out[start:start + len(block)]
                for j in range(self.m):
                    target += rows[j].take(block[:, j], axis=0)
            return out

        return score

    @property
    def table_bytes_per_query(self) -> int:
        """Bytes of one query's lookup tables (``m * ksub`` float32)."""
        return self.m * self.ksub * 4


def kmeans(vectors: np.ndarray, k: int, *, seed: int, iterations: int = 25) -> np.ndarray:
    """k-means++ then Lloyd iterations (scipy's ``kmeans2``): ``(k, d)`` float32 centroids."""
    from scipy.cluster.vq import kmeans2

    x = as_dense(vectors, name="k-means vectors")
    check_training_size(len(x), k, "k-means", "centroid")
    centroids, _ = kmeans2(x.astype(np.float64), k, iter=iterations, minit="++", seed=np.random.default_rng(seed))
    return centroids.astype(np.float32)


def kmeans_trainer(ksub: int, *, seed: int = 0, iterations: int = 25) -> SubspaceTrainer:
    """:func:`kmeans` in each subspace, subspace ``j`` seeded with ``seed + j`` (so a subspace's
    codebook does not depend on how the subspaces are grouped)."""

    def train(columns: np.ndarray, group: range) -> np.ndarray:
        dsub = columns.shape[1] // len(group)
        return np.stack([kmeans(columns[:, i * dsub:(i + 1) * dsub], ksub, seed=seed + j, iterations=iterations)
                         for i, j in enumerate(group)])

    return train


def faiss_trainer(ksub: int = 256, *, seed: int = 0, iterations: int = 25, num_threads: int | None = 1,
                  owner: str = "pq") -> SubspaceTrainer:
    """FAISS's ``ProductQuantizer`` k-means (``ksub`` a power of two; needs ``faiss-cpu``): far
    faster than scipy's on large samples. FAISS trains every subspace on its own columns with the
    same seed, so a subspace's codebook does not depend on how the subspaces are grouped."""
    from embedlab.threads import faiss_threads

    try:
        import faiss
    except ImportError:
        raise ConfigError(f"{owner}: FAISS training needs faiss-cpu; pip install faiss-cpu") from None
    bits = ksub.bit_length() - 1
    if 1 << bits != ksub:
        raise ConfigError(f"{owner}: FAISS PQ needs ksub a power of two (got {ksub})")

    def train(columns: np.ndarray, group: range) -> np.ndarray:
        check_training_size(len(columns), ksub, owner)
        quantizer = faiss.ProductQuantizer(columns.shape[1], len(group), bits)
        quantizer.cp.niter, quantizer.cp.seed = iterations, seed
        with faiss_threads(num_threads):
            quantizer.train(np.ascontiguousarray(columns, dtype=np.float32))
        return faiss.vector_to_array(quantizer.centroids).reshape(len(group), ksub, -1)

    return train


def train_codebooks(vectors: object, *, m: int, ksub: int = 256, seed: int = 0, iterations: int = 25) -> Codebooks:
    """Plain PQ: k-means with ``ksub`` centroids in each of the ``m`` subspaces."""
    x = as_dense(vectors, name="pq training vectors")
    check_subspaces(x.shape[1], m)
    check_training_size(len(x), ksub)
    return Codebooks(kmeans_trainer(ksub, seed=seed, iterations=iterations)(x, range(m)))


def subspace_groups(m: int, rows: int, dsub: int, max_bytes: int = SAMPLE_BYTES) -> list[range]:
    """Consecutive subspaces whose float32 sample columns (``rows`` rows) fit ``max_bytes`` together
    (at least one subspace per group)."""
    per_group = max(1, max_bytes // max(1, rows * dsub * 4))
    return [range(j, min(j + per_group, m)) for j in range(0, m, per_group)]


def train_codebooks_from_chunks(chunks: Any, positions: np.ndarray, *, m: int, trainer: SubspaceTrainer,
                                max_bytes: int = SAMPLE_BYTES) -> Codebooks:
    """Codebooks trained on the rows ``positions`` of ``chunks`` (a :class:`embedlab.shards.ChunkStore`
    of dense vectors, or anything with ``dim`` and ``take(positions, columns=..., out=...)``)
    without holding the sample: for each group of subspaces (:func:`subspace_groups`) only that
    group's columns are read, chunk by chunk, into one buffer allocated once for every group, and
    trained with ``trainer``; the freed memory is then returned to the operating system
    (:func:`embedlab.memory.release_freed_memory`). Equal to training on ``chunks.take(positions)``
    whole when the trainer treats subspaces independently (the trainers here do)."""
    dsub = check_subspaces(int(chunks.dim), m)
    groups = subspace_groups(m, len(positions), dsub, max_bytes)
    buffer = np.empty(len(positions) * max(len(g) for g in groups) * dsub, np.float32)
    books = []
    for group in groups:
        out = buffer[:len(positions) * len(group) * dsub].reshape(len(positions), len(group) * dsub)
        columns = chunks.take(positions, columns=slice(group.start * dsub, group.stop * dsub), out=out)
        books.append(trainer(as_dense(columns, name="pq training vectors"), group))
        del columns, out
    del buffer
    release_freed_memory()  # the sample buffer and the trainer's temporaries, before the codes are built
    return Codebooks(np.concatenate(books))


def opq_codebooks(vectors: object, *, m: int, ksub: int = 256, seed: int = 0, iterations: int = 25,
                  num_threads: int | None = None, owner: str = "pq") -> tuple[np.ndarray, Codebooks]:
    """FAISS's ``OPQ{m},PQ{m}`` training (an orthonormal rotation ``R`` learnt with the codebooks):
    ``(R, codebooks)``, codes being those of ``R x``. Needs ``faiss-cpu`` (imported here only) and
    ``ksub`` a power of two; ``iterations`` and ``seed`` are FAISS's PQ k-means settings. The
    initialisation JPQ's and BiDR's official code start from."""
    from embedlab.threads import faiss_threads

    try:
        import faiss
    except ImportError:
        raise ConfigError(f"{owner}: OPQ needs FAISS; pip install faiss-cpu") from None
    bits = ksub.bit_length() - 1
    if 1 << bits != ksub:
        raise ConfigError(f"{owner}: OPQ trains FAISS PQ, which needs ksub a power of two (got {ksub}); "
                          f"use ksub={1 << bits} or {2 << bits}")
    x = as_dense(vectors, name=f"{owner} OPQ training vectors")
    dim = x.shape[1]
    check_subspaces(dim, m, owner)
    check_training_size(len(x), max(ksub, dim), owner, f"centroid per subspace (ksub={ksub}) and at least "
                                                       f"one per dimension (d={dim})")
    with faiss_threads(num_threads):
        opq = faiss.OPQMatrix(dim, m)
        opq.verbose = False
        pq = faiss.IndexPQ(dim, m, bits, faiss.METRIC_INNER_PRODUCT)
        pq.pq.cp.niter = iterations
        pq.pq.cp.seed = seed
        faiss.IndexPreTransform(opq, pq).train(x)
    rotation = faiss.vector_to_array(opq.A).reshape(dim, dim).astype(np.float32)
    centroids = faiss.vector_to_array(pq.pq.centroids).reshape(m, ksub, dim // m)
    return rotation, Codebooks(centroids.astype(np.float32))
