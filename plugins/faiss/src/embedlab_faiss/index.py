"""The ``faiss`` index: any FAISS factory string over dense vectors, with filters and persistence
through FAISS's own serializer inside an embedlab state directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import faiss
import numpy as np
from tqdm.auto import tqdm

from embedlab import validators as v
from embedlab.attributes import append_columns, check_columns, columns_from_state, columns_to_state
from embedlab.components import Component
from embedlab.embeddings import BinaryCodes, MultiVectorEmbeddings, as_dense
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.filters import resolve_filter
from embedlab.persistence import load_state, save_state
from embedlab.protocols import Filter
from embedlab.ranking import MISSING_SCORE, SearchResult
from embedlab.sampling import sample_positions
from embedlab.threads import faiss_threads
from embedlab_faiss.checks import check_structure
from embedlab_faiss.factory import METRICS, RUNTIME_PARAMETERS, create, set_runtime_parameters, train
from embedlab_faiss.selectors import needs_parameters, search_masked, search_parameters

INDEX_FILE = "index.faiss"
#: Vectors per ``index.add`` call; larger inputs are added in batches under a progress bar.
ADD_BATCH = 65_536
OWNER = "faiss index"


def _factory_string(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"factory must be a non-empty FAISS factory string such as 'HNSW32', got {value!r}")


@attrs.frozen
class FaissConfig:
    """``factory``: FAISS factory string; ``metric``: ip, l2 (squared, negated) or cosine (ip on
    L2-normalised vectors); ``nprobe``/``efSearch``: runtime parameters (None keeps FAISS's
    defaults); ``train_size``: training sample size (None: every vector given to build);
    ``seed``: seed of that sample; ``num_threads``: OpenMP threads (None: FAISS's default)."""

    factory: str = attrs.field(default="Flat", validator=_factory_string)
    metric: str = attrs.field(default="ip", validator=v.choice(*METRICS))
    nprobe: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))
    efSearch: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))
    train_size: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))
    seed: int = attrs.field(default=0, validator=v.seed)
    num_threads: int | None = attrs.field(default=None, validator=v.optional(v.positive_int))


class FaissIndex(Component):
    """Dense vectors in a FAISS index built from ``factory``; higher scores are better.

    >>> index = FaissIndex(factory="Flat", metric="l2")
    >>> index.build(np.eye(3, dtype=np.float32))
    >>> index.search(np.eye(3, dtype=np.float32)[:1], k=2).indices.tolist()
    [[0, 1]]
    """

    kind = "index"
    name = "faiss"
    Config = FaissConfig

    def __init__(self, config: FaissConfig | None = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._index: faiss.Index | None = None
        self._attributes: dict[str, np.ndarray] = {}
        self._serialized_bytes: int | None = None
        self.trained_on = 0

    @property
    def faiss_index(self) -> faiss.Index:
        """The underlying FAISS index (built)."""
        return self._built()

    @property
    def dim(self) -> int:
        return int(self._built().d)

    @property
    def attributes(self) -> Mapping[str, np.ndarray]:
        """Attribute columns given to build/add, one value per document."""
        return dict(self._attributes)

    def __len__(self) -> int:
        return 0 if self._index is None else int(self._index.ntotal)

    @property
    def memory_bytes(self) -> int:
        """Size of the index as FAISS serialises it (vectors, codes, lists, graph links)."""
        if self._index is None:
            return 0
        if self._serialized_bytes is None:
            self._serialized_bytes = int(faiss.serialize_index(self._index).size)
        return self._serialized_bytes

    def build(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Create the index, train it on a seeded sample when it needs training, add ``embeddings``."""
        vectors = self._vectors(embeddings, None, "documents")
        columns = check_columns(attributes, vectors.shape[0], owner=OWNER)
        c = self.config
        index = create(c.factory, vectors.shape[1], c.metric)
        set_runtime_parameters(index, c.factory, self._runtime_values())
        with faiss_threads(c.num_threads):
            self.trained_on = train(index, vectors, c.factory, c.train_size, c.seed)
            _add(index, vectors, c.factory)
        self._index, self._attributes, self._serialized_bytes = index, columns, None

    def build_from_chunks(self, chunks: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Same as ``build(chunks.gather(), attributes)`` for an :class:`embedlab.shards.ChunkStore`:
        trains on the same seeded sample read from the chunks (every vector when ``train_size``
        is None), then adds the vectors in the same batches as ``build`` (``ADD_BATCH`` rows, which
        fixes HNSW's insertion order), so only the index and one batch are in memory."""
        n, dim, c = len(chunks), chunks.dim, self.config
        columns = check_columns(attributes, n, owner=OWNER)
        index = create(c.factory, dim, c.metric)
        set_runtime_parameters(index, c.factory, self._runtime_values())
        with faiss_threads(c.num_threads):
            trained_on = 0
            if not index.is_trained:
                rows = sample_positions(n, n if c.train_size is None else c.train_size, c.seed)
                trained_on = train(index, self._vectors(chunks.take(rows), dim, "documents"), c.factory, None, c.seed)
            batch = np.empty((min(ADD_BATCH, n), dim), np.float32)
            filled = 0
            for _, chunk in chunks.chunks():
                rows = self._vectors(chunk, dim, "documents")
                while rows.shape[0]:
                    take = min(batch.shape[0] - filled, rows.shape[0])
                    batch[filled:filled + take], rows, filled = rows[:take], rows[take:], filled + take
                    if filled == batch.shape[0]:
                        _add(index, batch, c.factory)
                        filled = 0
            if filled:
                _add(index, batch[:filled], c.factory)
        self._index, self._attributes, self._serialized_bytes = index, columns, None
        self.trained_on = trained_on

    def add(self, embeddings: Any, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        """Append documents after the existing ones (builds the index when it is empty)."""
        if self._index is None:
            self.build(embeddings, attributes)
            return
        vectors = self._vectors(embeddings, self.dim, "documents")
        columns = check_columns(attributes, vectors.shape[0], self._attributes, owner=OWNER)
        with faiss_threads(self.config.num_threads):
            _add(self._index, vectors, self.config.factory)
        self._attributes = append_columns(self._attributes, columns)
        self._serialized_bytes = None

    def search(self, queries: Any, k: int, filter: Filter = None) -> SearchResult:
        """Top-``k`` documents per query; ``filter`` as accepted by
        :func:`embedlab.filters.resolve_filter` (masks, callables, dicts over the attributes)."""
        index = self._built()
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InvalidInputError(f"faiss: k must be an integer >= 1, got {k!r}")
        vectors = self._vectors(queries, self.dim, "queries")
        mask = resolve_filter(filter, self._attributes, len(self), vectors.shape[0])
        with faiss_threads(self.config.num_threads):
            if (mask is None or mask.all()) and needs_parameters(index, int(k)):
                distances, labels = index.search(vectors, int(k), params=search_parameters(index, None, int(k)))
            elif mask is None or mask.all():
                distances, labels = index.search(vectors, int(k))
            else:
                distances, labels = search_masked(index, vectors, int(k), mask, self.config.factory)
        found = labels >= 0
        scores = -distances if self.config.metric == "l2" else distances
        return SearchResult(np.where(found, scores, MISSING_SCORE), np.where(found, labels, -1))

    def save(self, path: str | Path) -> None:
        """FAISS's serializer writes ``index.faiss``; attributes become ``.npy`` files."""
        index = self._built()
        arrays, columns = columns_to_state(self._attributes, owner=OWNER)
        save_state(path, self, arrays=arrays, files={INDEX_FILE: faiss.serialize_index(index).tobytes()},
                   meta={"ntotal": int(index.ntotal), "dim": int(index.d),
                         "attributes": columns, "trained_on": self.trained_on})

    @classmethod
    def load(cls, path: str | Path) -> FaissIndex:
        """Load an index written by :meth:`save`: checksums are verified before FAISS reads it, and
        its structure after (:mod:`embedlab_faiss.checks`)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        loaded = state.build(cls)
        if INDEX_FILE not in state.files:
            raise state.error(f"saved faiss index has no {INDEX_FILE}")
        where = str(state.files[INDEX_FILE])
        try:
            index = faiss.deserialize_index(np.fromfile(state.files[INDEX_FILE], dtype=np.uint8))
        except (RuntimeError, MemoryError) as error:
            raise StateError(f"{where}: FAISS cannot read it: {error}") from None
        ntotal, dim = state.value("ntotal", int, minimum=0), state.value("dim", int, minimum=1)
        if index.ntotal != ntotal or index.d != dim:
            raise state.error(f"index holds {index.ntotal} vectors of dimension {index.d}, manifest says "
                              f"{ntotal} of {dim}")
        try:
            check_structure(index, create(loaded.config.factory, dim, loaded.config.metric), where)
            set_runtime_parameters(index, loaded.config.factory, loaded._runtime_values())
        except ConfigError as error:
            raise state.error(f"the saved config does not fit the index: {error}") from None
        loaded._index, loaded._attributes = index, columns_from_state(state, ntotal)
        loaded.trained_on = state.value("trained_on", int, minimum=0, default=0)
        return loaded

    def _runtime_values(self) -> dict[str, int | None]:
        return {key: getattr(self.config, key) for key in RUNTIME_PARAMETERS}

    def _vectors(self, x: Any, dim: int | None, what: str) -> np.ndarray:
        if isinstance(x, (MultiVectorEmbeddings, BinaryCodes)):
            raise InvalidInputError(f"faiss: {what} must be dense float vectors, got "
                                    f"{type(x).__name__}; use a multi-vector or binary index instead")
        vectors = as_dense(x, dim=dim, name=f"faiss {what}")
        if self.config.metric == "cosine":
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms > 0, norms, 1).astype(np.float32)
        return vectors

    def _built(self) -> faiss.Index:
        if self._index is None:
            raise NotFittedError("faiss: the index is empty; call build(embeddings) first")
        return self._index


def _add(index: faiss.Index, vectors: np.ndarray, factory: str) -> None:
    starts = range(0, vectors.shape[0], ADD_BATCH)
    try:
        for start in tqdm(starts, desc=f"faiss: add to {factory}", unit="batch", leave=False,
                          disable=len(starts) < 4):
            index.add(vectors[start:start + ADD_BATCH])
    except RuntimeError as error:
        raise InvalidInputError(f"faiss: adding vectors to factory {factory!r} failed (an 'IDMap' "
                                f"prefix is not needed: positions are the ids). FAISS says: {error}") from None
