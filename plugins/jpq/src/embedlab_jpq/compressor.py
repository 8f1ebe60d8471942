"""The ``jpq`` compressor: PQ codes from k-means, centroids and a query map trained for ranking (JPQ)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch

import embedlab
from embedlab.components import NOT_IDENTITY
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab.pq import (
    Codebooks,
    check_subspaces,
    check_training_size,
    code_dtype,
    opq_codebooks,
    train_codebooks,
)
from embedlab.threads import torch_threads
from embedlab.training import TrainingData
from embedlab_jpq.query_map import LinearQueryMap
from embedlab_jpq.torch_pq import FloatDocuments, FrozenPQ
from embedlab_jpq.training import check_relevant, train_jpq

_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))


@attrs.define
class _Fitted:
    rotation: np.ndarray | None  # (d, d) orthonormal OPQ rotation applied before PQ, or None
    assign: Codebooks  # k-means centroids: encode() assigns codes with these (frozen assignments)
    books: Codebooks  # scoring centroids: decode() and score() use these (trained by JPQ)
    adapter: np.ndarray | None  # (d, d) trained query map W applied before the rotation, or None
    record: dict[str, Any]  # training record: losses, validation nDCG@10, best epoch

    @property
    def dim(self) -> int:
        return self.books.dim

    @functools.cached_property
    def query_matrix(self) -> np.ndarray | None:
        """``P = R W``: scoring maps a query ``q`` to ``P q`` (None: the identity). Computed once
        per state, not on every ``score``/``decode`` call."""
        if self.adapter is None:
            return self.rotation
        return self.adapter if self.rotation is None else self.rotation @ self.adapter


def _apply(x: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """Rows of ``x`` multiplied by ``matrix`` (``x @ matrix.T``); ``x`` itself for None."""
    return x if matrix is None else np.ascontiguousarray(x @ matrix.T)


class JPQCompressor(embedlab.Component):
    """JPQ (Zhan et al., CIKM 2021): product quantisation whose centroids, together with a linear
    map of the query vectors, are trained with a pairwise ranking loss against the live PQ index,
    the document assignments staying frozen.

    ``fit(doc_vectors)`` gives plain PQ (k-means per subspace; with ``opq=True`` FAISS's own
    ``OPQ{m},PQ{m}`` training, JPQ's initialisation). ``train(doc_vectors, query_vectors,
    relevant)`` then trains on labelled queries. Codes are ``m`` centroid ids (uint8 for
    ``ksub <= 256``); scoring is inner product by lookup tables (ADC), so the core ``ExactIndex``
    searches the codes directly.

    >>> jpq = JPQCompressor(m=32).fit(doc_vectors)                         # doctest: +SKIP
    >>> jpq.train(doc_vectors, train_query_vectors, relevant_positions)    # doctest: +SKIP
    >>> jpq.bytes_per_vector                                               # doctest: +SKIP
    32.0
    """

    kind = "compressor"
    name = "jpq"

    @attrs.frozen
    class Config:
        """``m``: subspaces (bytes per vector for ``ksub <= 256``); ``ksub``: centroids per
        subspace; ``opq``: initialise from FAISS ``OPQ{m},PQ{m}`` (rotation kept fixed, as JPQ
        does; ``ksub`` a power of two); ``kmeans_iterations``: Lloyd iterations of the initial
        k-means; ``lr``: Adam on the centroids; ``train_centroids``: train them (off: the map
        alone on the initial codes, a control); ``query_adapter``: also train a linear map of the
        query vectors (:mod:`embedlab_jpq.query_map`), at ``query_lr``; ``train_against``:
        ``"codes"`` (JPQ: the live PQ index) or ``"float"`` (the control: the map trained against
        the uncompressed document vectors, then served on the codes); ``epochs``,
        ``batch_size``: passes and queries per step; ``top_k``: live-index negatives per query (200
        in the paper); ``lambda_cut``: ranks beyond it get weight 0 (0: no cut); ``temperature``:
        scores are divided by it inside the loss (see :mod:`embedlab_jpq.loss`);
        ``validation_fraction``, ``patience``: held-out training queries and early stopping;
        ``holdout``: "documents" (held-out queries and their relevant documents stay out of
        training, so early stopping measures generalisation to unseen documents) or "queries"
        (random queries only); ``seed``; ``num_threads``: torch/FAISS threads (None: leave
        alone); ``show_progress``: tqdm bar (None: only on a terminal)."""

        m: int = attrs.field(default=16, validator=[_int, _v.ge(1)])
        ksub: int = attrs.field(default=256, validator=[_int, _v.ge(2), _v.le(65536)])
        opq: bool = attrs.field(default=False, validator=_v.instance_of(bool))
        kmeans_iterations: int = attrs.field(default=25, validator=[_int, _v.ge(1)])
        lr: float = attrs.field(default=2e-5, validator=[_number, _v.gt(0)])
        train_centroids: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        query_adapter: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        query_lr: float = attrs.field(default=3e-4, validator=[_number, _v.gt(0)])
        train_against: str = attrs.field(default="codes", validator=_v.in_(("codes", "float")))
        epochs: int = attrs.field(default=30, validator=[_int, _v.ge(1)])
        batch_size: int = attrs.field(default=32, validator=[_int, _v.ge(1)])
        top_k: int = attrs.field(default=200, validator=[_int, _v.ge(1)])
        lambda_cut: int = attrs.field(default=10, validator=[_int, _v.ge(0)])
        temperature: float = attrs.field(default=0.05, validator=[_number, _v.gt(0)])
        validation_fraction: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        holdout: str = attrs.field(default="documents", validator=_v.in_(("queries", "documents")))
        patience: int = attrs.field(default=3, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]),
                                              metadata=NOT_IDENTITY)
        show_progress: bool | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(bool)),
                                                 metadata=NOT_IDENTITY)

        def __attrs_post_init__(self) -> None:
            if self.train_against == "float" and self.train_centroids:
                raise ValueError("train_against='float' trains the query map against the uncompressed vectors, "
                                 "where there are no centroids to train: set train_centroids=False")
            if not (self.train_centroids or self.query_adapter):
                raise ValueError("nothing to train: train_centroids and query_adapter are both False")

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._fitted: _Fitted | None = None

    # -- fitting --------------------------------------------------------------------------

    def fit(self, vectors: np.ndarray) -> JPQCompressor:
        """Plain PQ on document ``vectors``: k-means in each subspace, or FAISS OPQ + PQ with
        ``opq=True``. Replaces any previous state (including trained centroids and query map)."""
        self._fitted = self._plain(vectors)
        return self

    def _plain(self, vectors: object) -> _Fitted:
        config = self.config
        x = as_dense(vectors, name="jpq fit vectors")
        n, dim = x.shape
        check_subspaces(dim, config.m, "jpq")
        needed = max(config.ksub, dim)
        check_training_size(n, needed, "jpq", f"centroid per subspace (ksub={config.ksub}) and at least "
                                              f"one per dimension (d={dim})")
        if config.opq:
            rotation, books = self._faiss_opq(x)
        else:
            rotation, books = None, train_codebooks(x, m=config.m, ksub=config.ksub, seed=config.seed,
                                                    iterations=config.kmeans_iterations)
        return _Fitted(rotation, books, books, None, {"trained": False})

    def _faiss_opq(self, x: np.ndarray) -> tuple[np.ndarray, Codebooks]:
        """The rotation and codebooks of a FAISS ``OPQ{m},PQ{m}`` index trained on ``x`` (what
        JPQ's official code starts from), with our ``kmeans_iterations`` and ``seed``."""
        config = self.config
        return opq_codebooks(x, m=config.m, ksub=config.ksub, seed=config.seed, iterations=config.kmeans_iterations,
                             num_threads=config.num_threads, owner="jpq")

    def train(self, doc_vectors: np.ndarray, query_vectors: np.ndarray,
              relevant: Sequence[Sequence[int]]) -> JPQCompressor:
        """Train the centroids, and the query map with ``query_adapter=True``, with JPQ's ranking
        loss (see :mod:`embedlab_jpq.training`).

        ``doc_vectors``: the corpus searched during training; ``query_vectors``: training queries;
        ``relevant[i]``: positions in ``doc_vectors`` relevant to query ``i`` (queries without any
        are skipped; see :func:`embedlab_jpq.training.relevant_positions`). Starts from the current
        state, or from :meth:`fit` on ``doc_vectors`` when not fitted. Document codes are assigned
        once with the k-means centroids and frozen; ``encode`` keeps assigning with those, while
        ``decode``/``score`` use the trained centroids. Ctrl-C stops training and leaves the
        compressor exactly as it was before this call.
        """
        config = self.config
        start = self._fitted if self._fitted is not None else self._plain(doc_vectors)
        docs = as_dense(doc_vectors, dim=start.dim, name="jpq doc vectors")
        queries = as_dense(query_vectors, dim=start.dim, name="jpq query vectors")
        lists = check_relevant(relevant, len(queries), len(docs))
        keep = [i for i, row in enumerate(lists) if row]
        if not keep:
            raise InvalidInputError("jpq: no training query has a relevant document; pass relevance "
                                    "judgements (positions in doc_vectors) for the query vectors")
        rotated = _apply(docs, start.rotation)
        with torch.random.fork_rng(devices=[]), torch_threads(config.num_threads):
            torch.manual_seed(config.seed)
            generator = torch.Generator().manual_seed(config.seed)
            documents = FloatDocuments(rotated) if config.train_against == "float" else \
                FrozenPQ(start.books.centroids, start.assign.encode(rotated))
            query_map = LinearQueryMap(start.dim, start.rotation, config.query_adapter)
            if config.query_adapter and start.adapter is not None:
                with torch.no_grad():
                    query_map.weight.copy_(torch.from_numpy(start.adapter))
            result = train_jpq(documents, query_map, torch.from_numpy(queries[keep]), [lists[i] for i in keep],
                               config, generator, train_centroids=config.train_centroids, desc=f"jpq m={config.m}")
        record = {"trained": True, "losses": result.losses, "validation_ndcg10": result.validation,
                  "best_epoch": result.best_epoch, "queries": len(keep), "train_queries": result.train_queries}
        books = start.books if result.centroids is None else Codebooks(result.centroids)
        self._fitted = _Fitted(start.rotation, start.assign, books, result.adapter, record)
        return self

    def use_centroids(self, centroids: np.ndarray, record: dict[str, Any] | None = None) -> JPQCompressor:
        """Score with ``centroids`` (``(m, ksub, d/m)``, in the rotated space) from now on, keeping
        the assignments, rotation and query map: centroids trained elsewhere (jointly with a query
        encoder by the ``jpq`` retriever). ``record`` replaces the training record."""
        state = self._state()
        books = Codebooks(np.array(centroids, dtype=np.float32))
        if books.centroids.shape != state.assign.centroids.shape:
            raise InvalidInputError(f"jpq: centroids of shape {books.centroids.shape} do not fit this compressor's "
                                    f"{state.assign.centroids.shape}")
        self._fitted = _Fitted(state.rotation, state.assign, books, state.adapter,
                               dict(record if record is not None else state.record))
        return self

    def fit_queries(self, data: TrainingData) -> JPQCompressor:
        """Pipeline training (``[dataset] train_split`` in an experiment file): plain PQ on all the
        document vectors, then JPQ training on the training queries and their relevant documents.
        Ctrl-C or an error leaves the compressor as it was."""
        previous, self._fitted = self._fitted, None
        try:
            return self.train(data.document_vectors, data.query_vectors, data.relevant_positions())
        except BaseException:
            self._fitted = previous
            raise

    # -- state ----------------------------------------------------------------------------

    def _state(self) -> _Fitted:
        if self._fitted is None:
            raise NotFittedError("jpq: call fit(doc_vectors) (and optionally train(...)) first")
        return self._fitted

    @property
    def query_adapter(self) -> np.ndarray | None:
        """The trained ``(d, d)`` query map ``W`` (queries are scored as ``R W q``), or None before
        training or with ``query_adapter=False``."""
        adapter = self._state().adapter
        return None if adapter is None else adapter.copy()

    @property
    def rotation(self) -> np.ndarray | None:
        """The fixed ``(d, d)`` OPQ rotation ``R`` (codes live in the space of ``R x``), or None."""
        rotation = self._state().rotation
        return None if rotation is None else rotation.copy()

    @property
    def codebooks(self) -> Codebooks:
        """The scoring centroids (trained ones after :meth:`train`), in the rotated space."""
        return self._state().books

    @property
    def training_record(self) -> dict[str, Any]:
        """``trained``, and after :meth:`train`: ``losses`` (mean loss of every epoch run),
        ``validation_ndcg10`` (held-out nDCG@10 before training, then after every epoch),
        ``best_epoch`` (whose centroids were kept; 0 = the initial ones), ``queries``."""
        return dict(self._state().record)

    @property
    def bytes_per_vector(self) -> float:
        return float(self._state().books.bytes_per_vector)

    # -- codes ----------------------------------------------------------------------------

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, m)`` centroid ids (uint8 for ``ksub <= 256``), assigned with the k-means centroids."""
        state = self._state()
        x = as_dense(vectors, dim=state.dim, name="jpq vectors", allow_empty=True)
        return state.assign.encode(_apply(x, state.rotation))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, d)`` float32 vectors whose inner product with a query equals :meth:`score`: the
        scoring centroids mapped back through the rotation and the query map (``P^T c``). After
        training they serve ranking, not reconstruction."""
        state = self._state()
        decoded = state.books.decode(self.check_codes(codes))
        matrix = state.query_matrix
        return decoded if matrix is None else np.ascontiguousarray(decoded @ matrix)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(n_queries, n_codes)`` inner products with the decoded codes, by lookup tables (ADC)."""
        state = self._state()
        q = as_dense(queries, dim=state.dim, name="jpq queries", allow_empty=True)
        return state.books.scores(_apply(q, state.query_matrix), self.check_codes(codes), "ip")

    def check_codes(self, codes: object) -> np.ndarray:
        """``codes`` of this compressor (dtype, width, centroid ids in range), or InvalidInputError."""
        state = self._state()
        array = np.asarray(codes)
        expected = code_dtype(state.books.ksub)
        if array.dtype != expected or array.ndim != 2 or array.shape[1] != state.books.m:
            raise InvalidInputError(f"jpq: expected {expected} codes of shape (n, {state.books.m}), got "
                                    f"{array.dtype} {array.shape}; codes made by another compressor (or "
                                    "another jpq configuration) cannot be read by this one")
        return state.books.check_codes(array)

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Config, both centroid sets, the rotation and the query map as .npy files (embedlab.persistence)."""
        state = self._state()
        arrays = {"assign_centroids": state.assign.centroids, "centroids": state.books.centroids}
        if state.rotation is not None:
            arrays["rotation"] = state.rotation
        if state.adapter is not None:
            arrays["query_adapter"] = state.adapter
        save_state(path, self, arrays=arrays, meta={"dim": state.dim, "record": state.record,
                                                    "bytes_per_vector": self.bytes_per_vector})

    @classmethod
    def load(cls, path: str | Path) -> JPQCompressor:
        """Read a compressor written by :meth:`save`; another component's state, or arrays that do
        not fit the saved configuration, raise StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        compressor = state.build(cls)
        config = compressor.config
        dim = state.value("dim", int, minimum=1)
        if dim % config.m:
            raise state.error(f"dimension {dim} is not a multiple of m={config.m}")
        shape = (config.m, config.ksub, dim // config.m)
        assign, books = (state.array(n, dtype=np.float32, shape=shape, finite=True)
                         for n in ("assign_centroids", "centroids"))
        rotation = state.optional_array("rotation", kinds="f", shape=(dim, dim), finite=True)
        if config.opq != (rotation is not None):
            raise state.error(f"rotation.npy is {'missing' if config.opq else 'present'} but opq={config.opq}")
        adapter = state.optional_array("query_adapter", kinds="f", shape=(dim, dim), finite=True)
        if adapter is not None and not config.query_adapter:
            raise state.error("query_adapter.npy is present but query_adapter=False")
        compressor._fitted = _Fitted(None if rotation is None else np.array(rotation, np.float32),
                                     Codebooks(np.array(assign)), Codebooks(np.array(books)),
                                     None if adapter is None else np.array(adapter, np.float32),
                                     state.value("record", dict, default={}))
        return compressor
