"""Document storage and block scoring for each embedding kind (used by :class:`ExactIndex`).

A store holds the documents of one :class:`EmbeddingKind` and scores a batch of prepared queries
against a block of documents (a slice or an array of positions), higher being better:

* dense and sparse: inner product; ``cosine`` normalises vectors; ``l2`` gives the negated
  squared distance (``2<q, x> - |x|^2`` per block, ``- |q|^2`` added at the end);
* binary: negated Hamming distance (XOR and popcount on 64-bit words); the metric is not used;
* multi-vector: MaxSim / Chamfer (``embedlab.index.maxsim``); ``cosine`` normalises every vector.

A dense store may hold compressor codes instead of vectors (see ``ExactIndex.use_compressor``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Union

import numpy as np
import scipy.sparse as sp

from embedlab.embeddings import BinaryCodes, EmbeddingKind, MultiVectorEmbeddings, as_dense, as_sparse, kind_of
from embedlab.errors import InvalidInputError, StateError
from embedlab.index.maxsim import maxsim_scores
from embedlab.persistence import SavedState
from embedlab.protocols import CodeScorer, Compressor, PreparedCodeScorer
from embedlab.state_checks import check_csr, release_mapped

Rows = Union[slice, np.ndarray]

#: Documents decoded at once when a compressor has no CodeScorer (l2 norms at build time too).
DECODE_BLOCK = 8192
#: Rows of a (memory-mapped) part read, encoded and released at a time by ``DenseStore.fill``:
#: 3 MiB of 384-d float32, where a whole 16,384-row chunk would keep 24 MiB resident.
FILL_BLOCK = 2048


def embedding_kind(x: Any) -> EmbeddingKind:
    """Kind of a container; plain nested lists count as dense."""
    return EmbeddingKind.DENSE if isinstance(x, (list, tuple)) else kind_of(x)


def _normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1).astype(np.float32)


def check_codes(compressor: Compressor, codes: np.ndarray, dim: int, where: str) -> np.ndarray:
    """``codes`` read from disk, or :class:`StateError` unless they have the dtype and row shape of
    ``compressor.encode``'s output and pass the compressor's own ``check_codes`` when it has one."""
    probe = np.asarray(compressor.encode(np.zeros((1, dim), np.float32)))
    if codes.dtype != probe.dtype or codes.ndim != probe.ndim or codes.shape[1:] != probe.shape[1:]:
        raise StateError(f"{where}: codes of dtype {codes.dtype} and shape {codes.shape}; compressor "
                         f"{getattr(compressor, 'name', '?')!r} writes {probe.dtype} rows of shape {probe.shape[1:]}")
    checker = getattr(compressor, "check_codes", None)
    if checker is not None:
        try:
            checker(codes)
        except InvalidInputError as error:
            raise StateError(f"{where}: {error}") from None
    return codes


class DenseStore:
    """Float32 vectors, or codes of a compressor (decoded or scored one block at a time)."""

    kind = EmbeddingKind.DENSE

    def __init__(self, metric: str, dim: int, compressor: Compressor | None = None) -> None:
        self.metric, self.dim, self.compressor = metric, dim, compressor
        self.data = np.zeros((0, dim), np.float32)  # vectors, or codes with a compressor
        self.sq_norms = np.zeros(0, np.float32)  # l2 only: |x|^2 of stored (decoded) vectors

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def memory_bytes(self) -> int:
        return int(self.data.nbytes + self.sq_norms.nbytes)

    def _rows(self, embeddings: Any) -> np.ndarray:
        """What the store keeps for these documents: (normalised) vectors, or their codes."""
        vectors = as_dense(embeddings, dim=self.dim, name="documents")
        if self.metric == "cosine":
            vectors = _normalise_rows(vectors)
        return vectors if self.compressor is None else self._encode(vectors)

    def append(self, embeddings: Any) -> None:
        data = self._rows(embeddings)
        if self.metric == "l2":
            self.sq_norms = np.concatenate([self.sq_norms, self._sq_norms(data)])
        self.data = data if not len(self) else np.concatenate([self.data, data])

    def fill(self, parts: Iterable[tuple[int, Any]], n: int) -> None:
        """Set the contents from ``(start, embeddings)`` parts covering rows ``0..n-1``, writing
        each into one preallocated array. A part is read ``FILL_BLOCK`` rows at a time, and the
        pages of a memory-mapped part are released after each block
        (:func:`embedlab.state_checks.release_mapped`), so the peak is the store plus one block
        and its codes or normalised copy, not a whole chunk."""
        data: np.ndarray | None = None
        norms = np.zeros(n if self.metric == "l2" else 0, np.float32)
        for start, part in parts:
            total = part.shape[0] if isinstance(part, np.ndarray) else None
            blocks = [(0, part)] if total is None else \
                [(s, part[s:s + FILL_BLOCK]) for s in range(0, total, FILL_BLOCK)]
            for offset, block in blocks:
                rows = self._rows(block)
                if data is None:
                    data = np.empty((n, *rows.shape[1:]), dtype=rows.dtype)
                at = start + offset
                data[at:at + rows.shape[0]] = rows
                if self.metric == "l2":
                    norms[at:at + rows.shape[0]] = self._sq_norms(rows)
                del rows
                if total is not None:
                    release_mapped(block)
            del part, blocks  # unmap this part before the next one is read
        if data is None:
            raise InvalidInputError("exact index: no documents to index (empty corpus)")
        self.data, self.sq_norms = data, norms

    def _encode(self, vectors: np.ndarray) -> np.ndarray:
        codes = np.asarray(self.compressor.encode(vectors))
        if codes.ndim < 1 or codes.shape[0] != vectors.shape[0]:
            raise InvalidInputError(f"compressor {self.compressor.name!r} returned codes of shape "
                                    f"{codes.shape} for {vectors.shape[0]} vectors")
        return codes

    def _sq_norms(self, data: np.ndarray) -> np.ndarray:
        if self.compressor is None:
            return np.einsum("ij,ij->i", data, data)
        parts = [self._decode(data[s:s + DECODE_BLOCK]) for s in range(0, data.shape[0], DECODE_BLOCK)]
        return np.concatenate([np.einsum("ij,ij->i", p, p) for p in parts])

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        return as_dense(self.compressor.decode(codes), dim=self.dim, name="decoded vectors")

    def prepare(self, queries: Any) -> np.ndarray:
        q = as_dense(queries, dim=self.dim, name="queries", allow_empty=True)
        return _normalise_rows(q) if self.metric == "cosine" else q

    @staticmethod
    def count(prepared: np.ndarray) -> int:
        return int(prepared.shape[0])

    @property
    def docs_major(self) -> bool:
        """Float vectors are scored as ``block @ queries.T``, a ``(documents, queries)`` block:
        this GEMM orientation ran 2-8% faster than ``queries @ block.T`` here (numpy's OpenBLAS,
        benchmarks/profile_exact_index.py); a :class:`PreparedCodeScorer`'s codes are scored
        ``(documents, queries)`` too; other codes ``(queries, documents)``."""
        return self.compressor is None or self.prepares_batches

    @property
    def prepares_batches(self) -> bool:
        """Codes of a :class:`PreparedCodeScorer`: the index scans one query batch at a time
        through :meth:`batch_scorer` (each batch's lookup tables built once, only one batch's held)."""
        return isinstance(self.compressor, PreparedCodeScorer)

    def scores(self, prepared: np.ndarray, q0: int, q1: int, docs: Rows, out: np.ndarray) -> np.ndarray:
        queries, block = prepared[q0:q1], self.data[docs]
        if self.compressor is None:  # docs_major
            scores = np.matmul(block, queries.T, out=out.reshape(out.shape[::-1]))
        elif self.prepares_batches:
            return self.batch_scorer(prepared, q0, q1)(docs, out)
        elif isinstance(self.compressor, CodeScorer):
            scores = np.asarray(self.compressor.score(queries, block), dtype=np.float32)
        else:
            scores = np.matmul(queries, self._decode(block).T, out=out)
        return self._l2_terms(scores, docs)

    def batch_scorer(self, prepared: np.ndarray, q0: int, q1: int) -> Callable[[Rows, np.ndarray], np.ndarray]:
        """``(docs, out) -> scores`` of queries ``q0:q1`` against any block of codes, ``(documents,
        queries)``, through the compressor's :meth:`~PreparedCodeScorer.query_scorer` (built once here)."""
        score = self.compressor.query_scorer(prepared[q0:q1])

        def scores(docs: Rows, out: np.ndarray) -> np.ndarray:
            return self._l2_terms(np.asarray(score(self.data[docs]), dtype=np.float32), docs)

        return scores

    def _l2_terms(self, scores: np.ndarray, docs: Rows) -> np.ndarray:
        """``l2``: inner products turned into ``2<q, x> - |x|^2`` (in place); other metrics unchanged."""
        if self.metric == "l2":
            scores *= 2
            scores -= self.sq_norms[docs][:, None] if self.docs_major else self.sq_norms[docs]
        return scores

    def finish(self, prepared: np.ndarray, scores: np.ndarray) -> np.ndarray:
        if self.metric != "l2":
            return scores
        q_norms = np.einsum("ij,ij->i", prepared, prepared)
        return np.minimum(scores - q_norms[:, None], 0)

    def arrays(self) -> dict[str, np.ndarray]:
        arrays = {"codes" if self.compressor is not None else "vectors": self.data}
        if self.metric == "l2":
            arrays["sq_norms"] = self.sq_norms
        return arrays

    @classmethod
    def restore(cls, metric: str, dim: int, state: SavedState,
                compressor: Compressor | None = None) -> DenseStore:
        store = cls(metric, dim, compressor)
        if compressor is None:
            store.data = state.array("vectors", dtype=np.float32, shape=(None, dim), finite=True)
        else:
            codes = state.array("codes", kinds="biuf")
            store.data = check_codes(compressor, codes, dim, str(state.path / "codes.npy"))
        if metric == "l2":
            store.sq_norms = state.array("sq_norms", dtype=np.float32, shape=(len(store),), finite=True)
        return store


class SparseStore:
    """A CSR matrix of documents; products with queries are computed block by block."""

    kind = EmbeddingKind.SPARSE

    def __init__(self, metric: str, dim: int) -> None:
        self.metric, self.dim = metric, dim
        self.data = sp.csr_matrix((0, dim), dtype=np.float32)
        self.sq_norms = np.zeros(0, np.float32)

    def __len__(self) -> int:
        return int(self.data.shape[0])

    @property
    def memory_bytes(self) -> int:
        m = self.data
        return int(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes + self.sq_norms.nbytes)

    def _prepare_rows(self, matrix: sp.csr_matrix) -> sp.csr_matrix:
        if self.metric != "cosine":
            return matrix
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1 / np.where(norms > 0, norms, 1)) @ matrix, dtype=np.float32)

    def append(self, embeddings: Any) -> None:
        matrix = self._prepare_rows(as_sparse(embeddings, dim=self.dim, name="documents"))
        if self.metric == "l2":
            norms = np.asarray(matrix.multiply(matrix).sum(axis=1), dtype=np.float32).ravel()
            self.sq_norms = np.concatenate([self.sq_norms, norms])
        self.data = matrix if not len(self) else sp.vstack([self.data, matrix], format="csr")

    def prepare(self, queries: Any) -> sp.csr_matrix:
        return self._prepare_rows(as_sparse(queries, dim=self.dim, name="queries", allow_empty=True))

    @staticmethod
    def count(prepared: sp.csr_matrix) -> int:
        return int(prepared.shape[0])

    def scores(self, prepared: sp.csr_matrix, q0: int, q1: int, docs: Rows, out: np.ndarray) -> np.ndarray:
        scores = np.asarray((prepared[q0:q1] @ self.data[docs].T).toarray(), dtype=np.float32)
        if self.metric == "l2":
            scores *= 2
            scores -= self.sq_norms[docs]
        return scores

    def finish(self, prepared: sp.csr_matrix, scores: np.ndarray) -> np.ndarray:
        if self.metric != "l2":
            return scores
        q_norms = np.asarray(prepared.multiply(prepared).sum(axis=1), dtype=np.float32).ravel()
        return np.minimum(scores - q_norms[:, None], 0)

    def arrays(self) -> dict[str, np.ndarray]:
        m = self.data
        arrays = {"data": m.data, "indices": m.indices, "indptr": m.indptr}
        if self.metric == "l2":
            arrays["sq_norms"] = self.sq_norms
        return arrays

    @classmethod
    def restore(cls, metric: str, dim: int, state: SavedState) -> SparseStore:
        store = cls(metric, dim)
        data, indices, indptr = (state.array(name) for name in ("data", "indices", "indptr"))
        check_csr(data, indices, indptr, dim, f"{state.path}: sparse documents")
        store.data = sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, dim))
        if metric == "l2":
            store.sq_norms = state.array("sq_norms", dtype=np.float32, shape=(len(store),), finite=True)
        return store


def _popcount(words: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(words)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)  # numpy < 2
    return table[words.view(np.uint8)].reshape(*words.shape, 8).sum(axis=-1, dtype=np.uint8)


def _words(bits: np.ndarray) -> np.ndarray:
    """``(n, nbytes)`` packed bits as ``(n, ceil(nbytes / 8))`` uint64 words (zero padded)."""
    padded = np.zeros((bits.shape[0], -(-bits.shape[1] // 8) * 8), dtype=np.uint8)
    padded[:, :bits.shape[1]] = bits
    return padded.view(np.uint64)


class BinaryStore:
    """Packed bit codes as 64-bit words; score = negated Hamming distance."""

    kind = EmbeddingKind.BINARY

    def __init__(self, metric: str, dim: int) -> None:
        self.dim = dim
        self.words = np.zeros((0, -(-dim // 64)), np.uint64)

    def __len__(self) -> int:
        return int(self.words.shape[0])

    @property
    def memory_bytes(self) -> int:
        return int(self.words.nbytes)

    def _check(self, codes: Any, what: str) -> BinaryCodes:
        if codes.dim != self.dim:
            raise InvalidInputError(f"{what}: codes have {codes.dim} bits, the index holds "
                                    f"{self.dim}-bit codes")
        return codes

    def append(self, embeddings: Any) -> None:
        words = _words(self._check(embeddings, "documents").bits)
        self.words = words if not len(self) else np.concatenate([self.words, words])

    def prepare(self, queries: Any) -> np.ndarray:
        return _words(self._check(queries, "queries").bits)

    @staticmethod
    def count(prepared: np.ndarray) -> int:
        return int(prepared.shape[0])

    def scores(self, prepared: np.ndarray, q0: int, q1: int, docs: Rows, out: np.ndarray) -> np.ndarray:
        queries, block = prepared[q0:q1], np.ascontiguousarray(self.words[docs].T)
        distance = np.zeros(out.shape, dtype=np.uint32)
        for word in range(block.shape[0]):
            distance += _popcount(queries[:, word, None] ^ block[word])
        np.copyto(out, distance, casting="unsafe")
        return np.negative(out, out=out)

    @staticmethod
    def finish(prepared: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return scores

    def arrays(self) -> dict[str, np.ndarray]:
        return {"bits": self.words.view(np.uint8)[:, :(self.dim + 7) // 8]}

    @classmethod
    def restore(cls, metric: str, dim: int, state: SavedState) -> BinaryStore:
        store = cls(metric, dim)
        bits = state.array("bits", dtype=np.uint8, shape=(None, (dim + 7) // 8))
        store.words = _words(BinaryCodes(bits, dim).bits)
        return store


class MultiVectorStore:
    """Flat document vectors plus offsets; scored with exact MaxSim."""

    kind = EmbeddingKind.MULTI_VECTOR

    def __init__(self, metric: str, dim: int) -> None:
        if metric == "l2":
            raise InvalidInputError("exact index: metric 'l2' is not defined for multi-vector "
                                    "embeddings (MaxSim uses inner products); use 'ip' or 'cosine'")
        self.metric, self.dim = metric, dim
        self.items = MultiVectorEmbeddings(np.zeros((0, dim), np.float32), np.zeros(1, np.int64))

    def __len__(self) -> int:
        return len(self.items)

    @property
    def memory_bytes(self) -> int:
        return int(self.items.vectors.nbytes + self.items.offsets.nbytes)

    def _check(self, items: MultiVectorEmbeddings, what: str) -> MultiVectorEmbeddings:
        if items.dim != self.dim:
            raise InvalidInputError(f"{what}: vectors have dimension {items.dim}, the index holds "
                                    f"dimension {self.dim}")
        if self.metric == "cosine":
            return MultiVectorEmbeddings(_normalise_rows(items.vectors), items.offsets)
        return items

    def append(self, embeddings: Any) -> None:
        new = self._check(embeddings, "documents")
        old = self.items
        self.items = MultiVectorEmbeddings(np.concatenate([old.vectors, new.vectors]),
                                           np.concatenate([old.offsets, new.offsets[1:] + old.offsets[-1]]))

    def prepare(self, queries: Any) -> MultiVectorEmbeddings:
        return self._check(queries, "queries")

    @staticmethod
    def count(prepared: MultiVectorEmbeddings) -> int:
        return len(prepared)

    def scores(self, prepared: MultiVectorEmbeddings, q0: int, q1: int, docs: Rows,
               out: np.ndarray) -> np.ndarray:
        block = self._select(docs)
        offsets = prepared.offsets[q0:q1 + 1]
        queries = MultiVectorEmbeddings(prepared.vectors[offsets[0]:offsets[-1]], offsets - offsets[0])
        return maxsim_scores(queries, block)

    def _select(self, docs: Rows) -> MultiVectorEmbeddings:
        if not isinstance(docs, slice):
            return self.items.take(docs)
        offsets = self.items.offsets[docs.start:docs.stop + 1]
        return MultiVectorEmbeddings(self.items.vectors[offsets[0]:offsets[-1]], offsets - offsets[0])

    @staticmethod
    def finish(prepared: MultiVectorEmbeddings, scores: np.ndarray) -> np.ndarray:
        return scores

    def arrays(self) -> dict[str, np.ndarray]:
        return {"vectors": self.items.vectors, "offsets": self.items.offsets}

    @classmethod
    def restore(cls, metric: str, dim: int, state: SavedState) -> MultiVectorStore:
        if metric == "l2":
            raise state.error("metric 'l2' is not defined for multi-vector embeddings")
        store = cls(metric, dim)
        vectors = state.array("vectors", dtype=np.float32, shape=(None, dim), finite=True)
        offsets = state.offsets("offsets", None, vectors.shape[0])
        store.items = MultiVectorEmbeddings(vectors, offsets)
        return store


Store = Union[DenseStore, SparseStore, BinaryStore, MultiVectorStore]
STORES: dict[EmbeddingKind, type] = {s.kind: s for s in (DenseStore, SparseStore, BinaryStore,
                                                        MultiVectorStore)}


def dimension(x: Any, kind: EmbeddingKind) -> int:
    """Vector dimension (vocabulary size for sparse, bits for binary) of a container."""
    if kind in (EmbeddingKind.MULTI_VECTOR, EmbeddingKind.BINARY):
        return int(x.dim)
    return int(np.shape(x)[1]) if np.ndim(x) == 2 or sp.issparse(x) else -1
