"""The ``bidr`` index: in-memory codes find top-N candidates, memory-mapped float vectors re-score them."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

import embedlab
from embedlab.components import NOT_IDENTITY
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError
from embedlab.index import ExactIndex
from embedlab.persistence import load_state, save_state
from embedlab.pq_compressor import PQCompressor
from embedlab.protocols import Compressor, Filter
from embedlab.ranking import MISSING_SCORE, SearchResult
from embedlab.sampling import sample_positions
from embedlab_bidr.vectors import VectorFile

_v = attrs.validators
_int = _v.instance_of(int)
METRICS = ("ip", "cosine", "l2")
#: Sub-directory of a saved index holding the in-memory tier (a core ExactIndex over codes).
CODES_DIR = "codes"
VECTORS = "vectors"
OWNER = "bidr"
#: Queries whose candidates are found at once (bounds the ADC tables and score blocks held in memory).
QUERY_BATCH = 64


def _finite(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise InvalidInputError(f"{OWNER}: {what} must be a positive integer, got {value!r}")
    return int(value)


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32)


class BiDRIndex(embedlab.Component):
    """Two-tier search as served by BiDR (Xiao et al., WWW 2022).

    Tier 1, in memory: compact codes (default ``pq` (core)`, plain PQ with ``m`` x ``ksub``
    centroids; or any compressor given to :meth:`use_compressor`) held by a core
    :class:`~embedlab.index.ExactIndex`, which finds each query's top-``candidates`` by ADC (or
    decoded) scores, filters included. Tier 2, on disk: the float32 vectors in a ``.npy`` file,
    memory-mapped; only the candidates' rows are read and re-scored exactly. The final score is
    ``exact + sparse_weight * code_score`` (BiDR's ``post_verification.py`` uses 0.3; the default
    0 ranks by the exact score alone, so returned scores are exact).

    * ``candidates`` below ``k`` is raised to ``k``; above the corpus size it is clamped to it
      (so ``candidates >= len(index)`` gives exact search).
    * Without :meth:`use_compressor` or :meth:`fit`, ``build`` fits the default PQ on a seeded
      sample of at most ``train_size`` of the documents it receives.
    * ``memory_bytes`` counts the in-memory tier only (codes, l2 norms of decoded codes, attribute
      columns, and centroids when the compressor reports ``memory_bytes``); ``disk_bytes`` the
      vectors file; ``last_bytes_read`` the float bytes the last search read from it.
    * ``storage_dir`` is where the working vectors file goes until :meth:`save` (a fresh
      temporary directory when None); ``save`` copies the vectors into the state directory and
      the index then reads that copy (the working file is deleted).

    >>> index = BiDRIndex(m=8, ksub=16, candidates=50)                        # doctest: +SKIP
    >>> index.build(doc_vectors); index.search(query_vectors, k=10).indices   # doctest: +SKIP
    """

    kind = "index"
    name = "bidr"

    @attrs.frozen
    class Config:
        """``candidates``: N re-scored with full vectors; ``metric``: "ip", "cosine" or "l2";
        ``m``, ``ksub``, ``kmeans_iterations``, ``train_size``: the default PQ (ignored with
        ``use_compressor``); ``sparse_weight``: weight of the code score added to the exact one;
        ``storage_dir``: directory of the working vectors file before ``save``; ``seed``."""

        candidates: int = attrs.field(default=300, validator=[_int, _v.ge(1)])
        metric: str = attrs.field(default="ip", validator=_v.in_(METRICS))
        m: int = attrs.field(default=32, validator=[_int, _v.ge(1)])
        ksub: int = attrs.field(default=256, validator=[_int, _v.ge(2), _v.le(65536)])
        kmeans_iterations: int = attrs.field(default=20, validator=[_int, _v.ge(1)])
        train_size: int = attrs.field(default=65536, validator=[_int, _v.ge(1)])
        sparse_weight: float = attrs.field(default=0.0, validator=_finite)
        storage_dir: str | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(str)),
                                              metadata=NOT_IDENTITY)
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._compressor: Compressor | None = None
        self._codes: ExactIndex | None = None
        self._vectors: VectorFile | None = None
        self._codebook_bytes = 0
        self.last_bytes_read = 0

    # -- building -------------------------------------------------------------------------

    def use_compressor(self, compressor: Compressor) -> None:
        """Let a fitted compressor supply the in-memory codes (call before :meth:`build`)."""
        if len(self):
            raise InvalidInputError(f"{OWNER}: call use_compressor before build (the index already holds documents)")
        self._compressor = compressor

    def fit(self, vectors: np.ndarray) -> BiDRIndex:
        """Fit the default PQ on a seeded sample of at most ``train_size`` of ``vectors``."""
        if len(self):
            raise InvalidInputError(f"{OWNER}: fit before build; the codes of indexed documents would not match")
        if self._compressor is not None and not isinstance(self._compressor, PQCompressor):
            raise InvalidInputError(f"{OWNER}: a compressor was given with use_compressor; fit that compressor "
                                    "instead of the index")
        c = self.config
        x = self._prepare(as_dense(vectors, name=f"{OWNER} fit vectors"))
        if len(x) > c.train_size:
            x = x[sample_positions(len(x), c.train_size, c.seed)]
        self._compressor = PQCompressor(m=c.m, ksub=c.ksub, iterations=c.kmeans_iterations, seed=c.seed).fit(x)
        return self

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return _normalise(x) if self.config.metric == "cosine" else x

    def build(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these dense vectors (positions 0..n-1)."""
        x = self._prepare(as_dense(embeddings, name=f"{OWNER} documents"))
        if self._compressor is None:
            self.fit(x)
        codes = ExactIndex(metric=self.config.metric)
        codes.use_compressor(self._compressor)
        codes.build(x, attributes)
        self._release()
        self._codes, self._vectors = codes, VectorFile.create(x, self.config.storage_dir)
        self._codebook_bytes = int(getattr(self._compressor, "memory_bytes", 0))

    def add(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents (encoded with the existing codes; attribute columns must match the build)."""
        if self._codes is None or self._vectors is None:
            self.build(embeddings, attributes)
            return
        x = self._prepare(as_dense(embeddings, dim=self.dim, name=f"{OWNER} documents"))
        self._codes.add(x, attributes)
        self._vectors = self._vectors.appended(x, self.config.storage_dir)

    def _release(self) -> None:
        if self._vectors is not None:
            self._vectors.release()

    # -- accounting -----------------------------------------------------------------------

    def __len__(self) -> int:
        return 0 if self._codes is None else len(self._codes)

    @property
    def dim(self) -> int:
        return 0 if self._vectors is None else self._vectors.dim

    @property
    def memory_bytes(self) -> int:
        """Bytes of the in-memory tier: codes, l2 norms, attribute columns and centroids."""
        return 0 if self._codes is None else self._codes.memory_bytes + self._codebook_bytes

    @property
    def disk_bytes(self) -> int:
        """Bytes of the memory-mapped vectors file."""
        return 0 if self._vectors is None else self._vectors.disk_bytes

    @property
    def vectors(self) -> np.ndarray:
        """The full-precision tier (a read-only ``np.memmap``)."""
        return self._built()[1].array

    def _built(self) -> tuple[ExactIndex, VectorFile]:
        if self._codes is None or self._vectors is None:
            raise InvalidInputError(f"{OWNER}: the index is empty; call build() first")
        return self._codes, self._vectors

    # -- search ---------------------------------------------------------------------------

    def search_codes(self, queries: Any, k: int, filter: Filter = None) -> SearchResult:
        """Tier 1 alone: top-``k`` by code scores, no disk access (the PQ-only baseline)."""
        codes, _ = self._built()
        return codes.search(queries, _count(k, "k"), filter)

    def search(self, queries: Any, k: int, filter: Filter = None, *, candidates: int | None = None) -> SearchResult:
        """Top-``k`` after re-scoring each query's top-``candidates`` (default: the config's) with
        the full vectors; ``filter`` as in :func:`embedlab.filters.resolve_filter`."""
        codes, vectors = self._built()
        k = _count(k, "k")
        wanted = self.config.candidates if candidates is None else _count(candidates, "candidates")
        q = self._prepare(as_dense(queries, dim=self.dim, name=f"{OWNER} queries", allow_empty=True))
        n = min(max(wanted, k), len(self))
        scores = np.full((len(q), k), MISSING_SCORE, dtype=np.float32)
        positions = np.full((len(q), k), -1, dtype=np.int64)
        shared = filter is None or isinstance(filter, Mapping) or (isinstance(filter, np.ndarray) and filter.ndim == 1)
        step = QUERY_BATCH if shared else max(len(q), 1)  # per-query filters: one batch, checked by the core
        rows_read = 0
        for start in range(0, len(q), step):
            first = codes.search(q[start:start + step], n, filter)
            for i, (found, code_scores) in enumerate(zip(first.indices, first.scores), start):
                keep = found >= 0
                order = np.argsort(found[keep], kind="stable")
                candidate = found[keep][order]
                final = self._exact(q[i], vectors.rows(candidate))
                if self.config.sparse_weight:
                    final += np.float32(self.config.sparse_weight) * code_scores[keep][order]
                best = np.lexsort((candidate, -final))[:k]
                scores[i, :best.size], positions[i, :best.size] = final[best], candidate[best]
                rows_read += candidate.size
        self.last_bytes_read = rows_read * self.dim * 4
        return SearchResult(scores, positions)

    def _exact(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        if self.config.metric == "l2":
            diff = rows - query
            return -np.einsum("ij,ij->i", diff, diff)
        return rows @ query

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write ``vectors.npy`` (checksummed) and the in-memory tier (the part ``codes/``, with
        its compressor) as one atomic state; the index then reads the saved vectors."""
        codes, vectors = self._built()
        save_state(path, self, arrays={VECTORS: vectors.array}, parts={CODES_DIR: codes},
                   meta={"dim": self.dim, "count": len(self), "codebook_bytes": self._codebook_bytes})
        vectors.release()
        self._vectors = VectorFile.open(Path(path) / f"{VECTORS}.npy")

    @classmethod
    def load(cls, path: str | Path, *, verify: bool = True) -> BiDRIndex:
        """Load a saved index: codes into memory, vectors memory-mapped. ``verify`` checks the
        sha256 of every file (reading the vectors once); sizes and structure are always checked."""
        state = load_state(path, kind=cls.kind, name=cls.name, mmap=True, verify=verify)
        index = state.build(cls)
        codes = state.part(CODES_DIR, cls=ExactIndex)
        if codes.config.metric != index.config.metric:
            raise state.error(f"the in-memory tier uses metric {codes.config.metric!r}, the index "
                              f"{index.config.metric!r}")
        dim = state.value("dim", int, minimum=1)
        array = state.array(VECTORS, dtype=np.float32, shape=(len(codes), dim))
        index._codes, index._compressor = codes, codes.compressor  # a rebuild keeps the saved codes' compressor
        index._vectors = VectorFile(Path(path) / f"{VECTORS}.npy", array, owned=False)
        index._codebook_bytes = state.value("codebook_bytes", int, minimum=0, default=0)
        return index
