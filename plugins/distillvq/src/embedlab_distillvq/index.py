"""The ``distillvq`` index: IVF lists of PQ residual codes, with coarse centroids and codebooks
initialised by FAISS ``IndexIVFPQ`` and refined by Distill-VQ score distillation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import numpy as np

from embedlab.attributes import append_columns, check_columns, columns_bytes, columns_from_state, columns_to_state
from embedlab.components import Component
from embedlab.embeddings import BinaryCodes, MultiVectorEmbeddings, as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.filters import resolve_filter
from embedlab.persistence import load_state, save_state
from embedlab.pq import Codebooks, check_subspaces, code_dtype
from embedlab.protocols import Filter
from embedlab.ranking import SearchResult
from embedlab.sampling import sample_positions
from embedlab.threads import numba_threads, torch_threads
from embedlab_distillvq.quantizer import IVFPQ, OWNER, check_training_vectors, init_from_faiss
from embedlab_distillvq.search import inverted_lists, ivf_adc_search

_ge1 = [attrs.validators.instance_of(int), attrs.validators.ge(1)]
_positive = [attrs.validators.instance_of(float), attrs.validators.gt(0.0)]
#: Queries scored per search block (bounds the ``(queries, m, ksub)`` lookup tables).
QUERY_BLOCK = 1024


def _power_of_two(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 2 or value > 65536 or value & (value - 1):
        raise ValueError(f"{attribute.name} must be a power of two in [2, 65536] (256 = one byte per "
                         f"subspace), got {value!r}")


def _optional_ge1(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name} must be an integer >= 1 or None, got {value!r}")


@attrs.frozen
class DistillVQConfig:
    """``nlist`` coarse lists, ``nprobe`` lists probed per query, ``m`` PQ subspaces of ``ksub``
    centroids (``m * log2(ksub) / 8`` bytes per vector); ``seed`` drives FAISS k-means, batching and
    torch. Distillation: ``epochs`` (0 = plain FAISS IVFPQ), ``batch_size`` queries, ``topk`` teacher
    neighbours per query, Adam learning rates ``lr_ivf``/``lr_pq``, ListNet ``temperature`` (scores are
    divided by it), early stop after ``patience`` epochs without a lower validation loss on
    ``validation_fraction`` of the training queries, at most ``max_train_queries`` queries (seeded
    sample; None = all). ``threads``: torch/numba/FAISS threads (None = their defaults)."""

    nlist: int = attrs.field(default=256, validator=_ge1)
    nprobe: int = attrs.field(default=8, validator=_ge1)
    m: int = attrs.field(default=16, validator=_ge1)
    ksub: int = attrs.field(default=256, validator=_power_of_two)
    seed: int = attrs.field(default=0, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
    epochs: int = attrs.field(default=5, validator=[attrs.validators.instance_of(int), attrs.validators.ge(0)])
    batch_size: int = attrs.field(default=64, validator=_ge1)
    topk: int = attrs.field(default=50, validator=_ge1)
    lr_ivf: float = attrs.field(default=3e-4, validator=_positive)
    lr_pq: float = attrs.field(default=3e-5, validator=_positive)
    temperature: float = attrs.field(default=0.05, validator=_positive)
    patience: int = attrs.field(default=2, validator=_ge1)
    validation_fraction: float = attrs.field(default=0.1, validator=[attrs.validators.instance_of(float),
                                                                     attrs.validators.ge(0.0),
                                                                     attrs.validators.lt(1.0)])
    max_train_queries: int | None = attrs.field(default=2000, validator=_optional_ge1)
    threads: int | None = attrs.field(default=None, validator=_optional_ge1)
    show_progress: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


class DistillVQIndex(Component):
    """IVF-PQ index (inner product) whose quantisers are distilled from exact dense scores.

    >>> index = DistillVQIndex(nlist=4, m=2, ksub=16, epochs=1, show_progress=False)
    >>> x = np.random.default_rng(0).normal(size=(200, 8)).astype(np.float32)
    >>> index.build(x)
    >>> index.search(x[:3], k=5).indices.shape, index.bytes_per_vector
    ((3, 5), 2)
    """

    kind = "index"
    name = "distillvq"
    Config = DistillVQConfig

    def __init__(self, config: DistillVQConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._quantizer: IVFPQ | None = None
        self._lists = np.empty(0, dtype=np.int64)
        self._codes = np.empty((0, self.config.m), dtype=code_dtype(self.config.ksub))
        self._offsets = np.zeros(1, dtype=np.int64)
        self._order = np.empty(0, dtype=np.int64)
        self._attributes: dict[str, np.ndarray] = {}
        #: Validation ListNet loss before training and after every epoch (empty until fitted).
        self.history: list[float] = []

    # ----------------------------------------------------------------- training
    def fit(self, doc_vectors: Any, train_queries: Any = None) -> DistillVQIndex:
        """Initialise like FAISS IVFPQ on ``doc_vectors``, then distil. ``train_queries`` (no labels)
        are the distillation queries; None uses a seeded sample of the documents as pseudo-queries.
        On success the index is emptied (codes of other quantisers would be meaningless; call
        :meth:`build`); Ctrl-C or an error leaves the index exactly as before."""
        c = self.config
        docs = self._vectors(doc_vectors, None, "training vectors")
        check_subspaces(docs.shape[1], c.m, OWNER)
        check_training_vectors(len(docs), c.nlist, c.ksub)
        queries = docs if train_queries is None else self._vectors(train_queries, docs.shape[1], "training queries")
        rows = np.arange(len(queries))
        if c.max_train_queries is not None and len(queries) > c.max_train_queries:
            rows = sample_positions(len(queries), c.max_train_queries, c.seed)
            queries = queries[rows]
        quantizer = init_from_faiss(docs, nlist=c.nlist, m=c.m, ksub=c.ksub, seed=c.seed, threads=c.threads)
        history: list[float] = []
        if c.epochs:
            from embedlab_distillvq.distill import distill

            with torch_threads(c.threads):
                centroids, books, history = distill(docs, quantizer.assign(docs), queries,
                                                    quantizer.centroids, quantizer.books.centroids, c,
                                                    rows if train_queries is None else None)
            quantizer = IVFPQ(centroids, Codebooks(books), quantizer.routers)
        self._quantizer, self.history = quantizer, history
        self._set_contents(np.empty(0, dtype=np.int64), self._codes[:0], {})
        return self

    @property
    def is_fitted(self) -> bool:
        return self._quantizer is not None

    @property
    def quantizer(self) -> IVFPQ:
        """The fitted coarse centroids and PQ codebooks."""
        if self._quantizer is None:
            raise NotFittedError(f"{OWNER}: the index is not fitted; call fit(doc_vectors) or build(...)")
        return self._quantizer

    # ----------------------------------------------------------------- contents
    def build(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Replace the contents with these documents; fits on them first (documents as
        pseudo-queries) when :meth:`fit` was not called."""
        vectors = self._vectors(embeddings, None if self._quantizer is None else self.dim, "documents")
        columns = check_columns(attributes, len(vectors), owner=OWNER)
        if self._quantizer is None:
            self.fit(vectors)
        lists, codes = self.quantizer.encode(vectors)
        self._set_contents(lists, codes, columns)

    def add(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents after the existing ones (encoded with the fitted quantisers)."""
        if self._quantizer is None or not len(self):
            self.build(embeddings, attributes)
            return
        vectors = self._vectors(embeddings, self.dim, "documents")
        columns = check_columns(attributes, len(vectors), self._attributes, owner=OWNER)
        lists, codes = self.quantizer.encode(vectors)
        self._set_contents(np.concatenate([self._lists, lists]), np.concatenate([self._codes, codes]),
                           append_columns(self._attributes, columns))

    def _set_contents(self, lists: np.ndarray, codes: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        offsets, order = inverted_lists(lists, self.quantizer.nlist)
        self._lists, self._codes, self._attributes = lists, np.ascontiguousarray(codes), columns
        self._offsets, self._order = offsets, order

    @property
    def dim(self) -> int:
        return self.quantizer.dim

    @property
    def codes(self) -> np.ndarray:
        """PQ residual codes of the documents, ``(n, m)``, in position order."""
        return self._codes

    @property
    def lists(self) -> np.ndarray:
        """Coarse list of every document, in position order."""
        return self._lists

    @property
    def attributes(self) -> Mapping[str, np.ndarray]:
        return dict(self._attributes)

    def __len__(self) -> int:
        return len(self._lists)

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of one stored PQ code (the list id is implicit in the inverted lists, as in FAISS)."""
        return self.config.m * code_dtype(self.config.ksub).itemsize

    @property
    def memory_bytes(self) -> int:
        """Codes + document ids in the lists + centroids, codebooks and attributes."""
        held = self._codes.nbytes + self._order.nbytes + self._offsets.nbytes + columns_bytes(self._attributes)
        if self._quantizer is not None:
            q = self._quantizer
            held += q.centroids.nbytes + q.books.centroids.nbytes
            held += 0 if q.routers is q.centroids else q.routers.nbytes
        return int(held)

    # ----------------------------------------------------------------- search
    def search(self, queries: Any, k: int, filter: Filter = None, nprobe: int | None = None) -> SearchResult:
        """Top-``k`` documents per query by IVF-ADC inner product over the ``nprobe`` (default: the
        config's) best lists; ``filter`` as in :func:`embedlab.filters.resolve_filter`."""
        quantizer = self.quantizer
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"{OWNER}: k must be an integer >= 1, got {k!r}")
        if nprobe is not None and (isinstance(nprobe, bool) or not isinstance(nprobe, (int, np.integer)) or nprobe < 1):
            raise InvalidInputError(f"{OWNER}: nprobe must be an integer >= 1, got {nprobe!r}")
        q = self._vectors(queries, self.dim, "queries")
        mask = resolve_filter(filter, self._attributes, len(self), len(q))
        probe = int(nprobe or self.config.nprobe)
        scores = np.empty((len(q), int(k)), dtype=np.float32)
        ids = np.empty((len(q), int(k)), dtype=np.int64)
        with numba_threads(self.config.threads):
            for start in range(0, len(q), QUERY_BLOCK):
                block = q[start:start + QUERY_BLOCK]
                rows = None if mask is None or mask.ndim == 1 else mask[start:start + QUERY_BLOCK]
                scores[start:start + len(block)], ids[start:start + len(block)] = ivf_adc_search(
                    quantizer.books.tables(block), quantizer.coarse_scores(block), probe, self._offsets,
                    self._order, self._codes, mask if rows is None else rows, int(k))
        return SearchResult(scores, ids)

    # ----------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Centroids, codebooks, lists and codes as ``.npy`` files (checksummed manifest)."""
        quantizer = self.quantizer
        arrays, columns = columns_to_state(self._attributes, owner=OWNER)
        arrays.update(centroids=quantizer.centroids, routers=quantizer.routers, codebooks=quantizer.books.centroids,
                      lists=self._lists, codes=self._codes)
        save_state(path, self, arrays=arrays, meta={"ntotal": len(self), "dim": self.dim,
                                                    "attributes": columns, "history": self.history})

    @classmethod
    def load(cls, path: str | Path) -> DistillVQIndex:
        """Load an index written by :meth:`save`; foreign, forged or inconsistent state raises StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        loaded = state.build(cls)
        c = loaded.config
        n = state.value("ntotal", int, minimum=0)
        dim = state.value("dim", int, minimum=1)
        centroids = state.array("centroids", dtype=np.float32, shape=(c.nlist, dim), finite=True)
        routers = state.array("routers", dtype=np.float32, shape=(c.nlist, dim), finite=True)
        if dim % c.m:
            raise state.error(f"dimension {dim} is not a multiple of m={c.m}")
        books = state.array("codebooks", dtype=np.float32, shape=(c.m, c.ksub, dim // c.m), finite=True)
        lists = state.indices("lists", c.nlist, shape=(n,))
        codes = state.indices("codes", c.ksub, dtype=code_dtype(c.ksub), shape=(n, c.m))
        loaded._quantizer = IVFPQ(centroids, Codebooks(books), routers)
        loaded.history = state.numbers("history")
        columns = columns_from_state(state, n)
        loaded._set_contents(lists.astype(np.int64), codes, columns)
        return loaded

    def _vectors(self, x: Any, dim: int | None, what: str) -> np.ndarray:
        if isinstance(x, (MultiVectorEmbeddings, BinaryCodes)):
            raise InvalidInputError(f"{OWNER}: {what} must be dense float vectors, got {type(x).__name__}")
        return as_dense(x, dim=dim, name=f"{OWNER} {what}")
