"""The ``jpq`` compressor: PQ codes from k-means, centroids trained for ranking (JPQ)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import attrs
import numpy as np
import torch

import embedlab
from embedlab.components import NOT_IDENTITY
from embedlab.embeddings import as_dense
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.persistence import load_state, save_state
from embedlab.pq import Codebooks, check_subspaces, check_training_size, code_dtype, train_codebooks
from embedlab.threads import faiss_threads, torch_threads
from embedlab.training import TrainingData
from embedlab_jpq.torch_pq import FrozenPQ
from embedlab_jpq.training import check_relevant, train_centroids

_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))


@attrs.define
class _Fitted:
    rotation: np.ndarray | None  # (d, d) orthonormal OPQ rotation applied before PQ, or None
    assign: Codebooks  # k-means centroids: encode() assigns codes with these (frozen assignments)
    books: Codebooks  # scoring centroids: decode() and score() use these (trained by JPQ)
    record: dict[str, Any]  # training record: losses, validation nDCG@10, best epoch

    @property
    def dim(self) -> int:
        return self.books.dim


def _faiss() -> Any:
    try:
        import faiss
    except ImportError:
        raise ConfigError("jpq: opq=True needs FAISS; pip install 'embedlab-jpq[opq]' (faiss-cpu)") from None
    return faiss


class JPQCompressor(embedlab.Component):
    """JPQ (Zhan et al., CIKM 2021): product quantisation whose centroids are trained with a
    pairwise ranking loss against the live PQ index, the document assignments staying frozen.

    ``fit(doc_vectors)`` gives plain PQ (k-means per subspace, optionally after a fixed OPQ
    rotation). ``train(doc_vectors, query_vectors, relevant)`` then trains the centroids on
    labelled queries. Codes are ``m`` centroid ids (uint8 for ``ksub <= 256``); scoring is inner
    product by lookup tables (ADC), so the core ``ExactIndex`` searches the codes directly.

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
        subspace; ``opq``: learn a FAISS OPQ rotation first (kept fixed, as JPQ does);
        ``kmeans_iterations``: Lloyd iterations of the initial k-means; ``lr``, ``epochs``,
        ``batch_size``: Adam on the centroids; ``top_k``: live-index negatives per query (200 in
        the paper); ``lambda_cut``: ranks beyond it get weight 0 (0: no cut); ``temperature``:
        scores are divided by it inside the loss (see :mod:`embedlab_jpq.loss`);
        ``validation_fraction``, ``patience``: held-out training queries and early stopping;
        ``holdout``: "queries" (random queries) or "documents" (also keep their relevant documents
        out of training, so early stopping measures generalisation to unseen documents);
        ``seed``; ``num_threads``: torch/FAISS threads (None: leave alone); ``show_progress``:
        tqdm bar (None: only on a terminal)."""

        m: int = attrs.field(default=16, validator=[_int, _v.ge(1)])
        ksub: int = attrs.field(default=256, validator=[_int, _v.ge(2), _v.le(65536)])
        opq: bool = attrs.field(default=False, validator=_v.instance_of(bool))
        kmeans_iterations: int = attrs.field(default=25, validator=[_int, _v.ge(1)])
        lr: float = attrs.field(default=3e-4, validator=[_number, _v.gt(0)])
        epochs: int = attrs.field(default=30, validator=[_int, _v.ge(1)])
        batch_size: int = attrs.field(default=32, validator=[_int, _v.ge(1)])
        top_k: int = attrs.field(default=200, validator=[_int, _v.ge(1)])
        lambda_cut: int = attrs.field(default=10, validator=[_int, _v.ge(0)])
        temperature: float = attrs.field(default=0.05, validator=[_number, _v.gt(0)])
        validation_fraction: float = attrs.field(default=0.1, validator=[_number, _v.ge(0), _v.lt(1)])
        holdout: str = attrs.field(default="queries", validator=_v.in_(("queries", "documents")))
        patience: int = attrs.field(default=3, validator=[_int, _v.ge(1)])
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        num_threads: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]),
                                              metadata=NOT_IDENTITY)
        show_progress: bool | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(bool)),
                                                 metadata=NOT_IDENTITY)

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._fitted: _Fitted | None = None

    # -- fitting --------------------------------------------------------------------------

    def fit(self, vectors: np.ndarray) -> JPQCompressor:
        """Plain PQ on document ``vectors``: optional OPQ rotation, then k-means in each subspace.
        Replaces any previous state (including trained centroids)."""
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
        rotation = self._opq_rotation(x) if config.opq else None
        rotated = x if rotation is None else x @ rotation.T
        books = train_codebooks(rotated, m=config.m, ksub=config.ksub, seed=config.seed,
                                iterations=config.kmeans_iterations)
        return _Fitted(rotation, books, books, {"trained": False})

    def _opq_rotation(self, x: np.ndarray) -> np.ndarray:
        faiss = _faiss()
        with faiss_threads(self.config.num_threads):
            opq = faiss.OPQMatrix(x.shape[1], self.config.m)
            opq.verbose = False
            opq.train(x)
            return faiss.vector_to_array(opq.A).reshape(opq.d_out, opq.d_in).astype(np.float32)

    def train(self, doc_vectors: np.ndarray, query_vectors: np.ndarray,
              relevant: Sequence[Sequence[int]]) -> JPQCompressor:
        """Train the centroids with JPQ's ranking loss (see :mod:`embedlab_jpq.training`).

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
        codes = start.assign.encode(self._rotate(docs, start))
        rotated = torch.from_numpy(self._rotate(queries[keep], start))
        with torch.random.fork_rng(devices=[]), torch_threads(config.num_threads):
            torch.manual_seed(config.seed)
            generator = torch.Generator().manual_seed(config.seed)
            pq = FrozenPQ(start.books.centroids, codes)
            result = train_centroids(pq, rotated, [lists[i] for i in keep], config, generator,
                                     desc=f"jpq m={config.m}")
        record = {"trained": True, "losses": result.losses, "validation_ndcg10": result.validation,
                  "best_epoch": result.best_epoch, "queries": len(keep), "train_queries": result.train_queries}
        self._fitted = _Fitted(start.rotation, start.assign, Codebooks(result.centroids), record)
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

    @staticmethod
    def _rotate(x: np.ndarray, state: _Fitted) -> np.ndarray:
        return x if state.rotation is None else np.ascontiguousarray(x @ state.rotation.T)

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
        return state.assign.encode(self._rotate(x, state))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, d)`` float32 reconstructions from the scoring centroids (rotated back)."""
        state = self._state()
        decoded = state.books.decode(self._check(codes))
        return decoded if state.rotation is None else np.ascontiguousarray(decoded @ state.rotation)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(n_queries, n_codes)`` inner products with the decoded codes, by lookup tables (ADC)."""
        state = self._state()
        q = as_dense(queries, dim=state.dim, name="jpq queries", allow_empty=True)
        return state.books.scores(self._rotate(q, state), self._check(codes), "ip")

    def _check(self, codes: object) -> np.ndarray:
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
        """Config, both centroid sets and the rotation as .npy files (embedlab.persistence)."""
        state = self._state()
        arrays = {"assign_centroids": state.assign.centroids, "centroids": state.books.centroids}
        if state.rotation is not None:
            arrays["rotation"] = state.rotation
        save_state(path, self, arrays=arrays, meta={"dim": state.dim, "record": state.record,
                                                    "bytes_per_vector": self.bytes_per_vector})

    @classmethod
    def load(cls, path: str | Path) -> JPQCompressor:
        """Read a compressor written by :meth:`save`; another component's state, or arrays that do
        not fit the saved configuration, raise StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        try:
            compressor = cls(**state.config)
        except embedlab.ConfigError as error:
            raise StateError(f"{path}: saved config is invalid here: {error}") from None
        config = compressor.config
        arrays = state.arrays
        if {"assign_centroids", "centroids"} - set(arrays):
            raise StateError(f"{path}: assign_centroids.npy / centroids.npy missing from the jpq state")
        shapes = {arrays["assign_centroids"].shape, arrays["centroids"].shape}
        dim = state.meta.get("dim")
        if len(shapes) != 1 or not isinstance(dim, int) or \
                next(iter(shapes)) != (config.m, config.ksub, dim // config.m):
            raise StateError(f"{path}: centroid shapes {sorted(shapes)} do not match m={config.m}, "
                             f"ksub={config.ksub}, dim={dim}")
        rotation = arrays.get("rotation")
        if config.opq != (rotation is not None) or (rotation is not None and rotation.shape != (dim, dim)):
            raise StateError(f"{path}: rotation.npy does not match opq={config.opq} and dim={dim}")
        try:
            compressor._fitted = _Fitted(None if rotation is None else np.array(rotation, np.float32),
                                         Codebooks(np.array(arrays["assign_centroids"])),
                                         Codebooks(np.array(arrays["centroids"])),
                                         dict(state.meta.get("record", {})))
        except InvalidInputError as error:
            raise StateError(f"{path}: invalid centroids: {error}") from None
        return compressor
