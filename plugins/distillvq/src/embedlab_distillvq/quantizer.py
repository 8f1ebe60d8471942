"""The IVF-PQ quantiser: coarse centroids plus residual PQ codebooks, initialised exactly like
FAISS ``IndexIVFPQ`` (inner-product metric) and encoding documents into (list, codes) pairs."""

from __future__ import annotations

import attrs
import faiss
import numpy as np

from embedlab.errors import InvalidInputError
from embedlab.pq import BLOCK, Codebooks, check_subspaces
from embedlab.threads import faiss_threads

OWNER = "distillvq"


@attrs.frozen(eq=False)
class IVFPQ:
    """``centroids``: float32 ``(nlist, d)`` coarse centroids scored against queries; ``books``: PQ
    codebooks of the residuals ``x - centroids[list]``; ``routers``: the centroids that choose a
    vector's list by the largest inner product (FAISS's ``IndexFlatIP`` coarse quantiser). Distill-VQ
    keeps the list assignment fixed while it learns ``centroids``, so ``routers`` stay the initial
    k-means centroids (None: the same as ``centroids``)."""

    centroids: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.float32))
    books: Codebooks
    routers: np.ndarray = attrs.field(default=None, converter=lambda a: a if a is None else
                                      np.ascontiguousarray(a, dtype=np.float32))

    def __attrs_post_init__(self) -> None:
        if self.routers is None:
            object.__setattr__(self, "routers", self.centroids)

    @property
    def nlist(self) -> int:
        return self.centroids.shape[0]

    @property
    def dim(self) -> int:
        return self.centroids.shape[1]

    def coarse_scores(self, vectors: np.ndarray) -> np.ndarray:
        """Inner product of every vector with every coarse centroid, ``(n, nlist)``."""
        return vectors @ self.centroids.T

    def assign(self, vectors: np.ndarray) -> np.ndarray:
        """Coarse list of every vector (largest inner product), int64 ``(n,)``."""
        out = np.empty(len(vectors), dtype=np.int64)
        for start in range(0, len(vectors), BLOCK):
            out[start:start + BLOCK] = np.argmax(vectors[start:start + BLOCK] @ self.routers.T, axis=1)
        return out

    def encode(self, vectors: np.ndarray, lists: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(lists, codes)``: the coarse list (given or assigned) and PQ codes of the residuals."""
        lists = self.assign(vectors) if lists is None else lists
        return lists, self.books.encode(vectors - self.centroids[lists])


def check_training_vectors(n: int, nlist: int, ksub: int) -> None:
    """A clear error when fewer training vectors than coarse centroids or PQ centroids are given."""
    needed = max(nlist, ksub)
    if n < needed:
        raise InvalidInputError(f"{OWNER}: fitting needs at least {needed} training vectors "
                                f"(nlist={nlist} coarse centroids, ksub={ksub} PQ centroids per subspace), "
                                f"got {n}; pass more vectors or lower nlist/ksub")


def faiss_ivfpq(dim: int, nlist: int, m: int, ksub: int, seed: int) -> faiss.IndexIVFPQ:
    """An untrained FAISS ``IndexIVFPQ`` (inner product, residual encoding) with seeded k-means:
    the reference this plugin starts from and is compared with."""
    nbits = int(ksub).bit_length() - 1
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    index.pq.cp.seed = seed
    # Small corpora: silence FAISS's "please provide at least 39 points per centroid" warning.
    index.cp.min_points_per_centroid = index.pq.cp.min_points_per_centroid = 1
    return index


def init_from_faiss(vectors: np.ndarray, *, nlist: int, m: int, ksub: int, seed: int,
                    threads: int | None) -> IVFPQ:
    """Train FAISS ``IndexIVFPQ`` on ``vectors`` and read its coarse centroids and codebooks."""
    check_subspaces(vectors.shape[1], m, OWNER)
    check_training_vectors(len(vectors), nlist, ksub)
    index = faiss_ivfpq(vectors.shape[1], nlist, m, ksub, seed)
    with faiss_threads(threads):
        index.train(vectors)
    centroids = index.quantizer.reconstruct_n(0, nlist)
    books = faiss.vector_to_array(index.pq.centroids).reshape(m, ksub, vectors.shape[1] // m)
    return IVFPQ(centroids, Codebooks(books))
