"""Embedding containers and validation.

Four kinds of embeddings flow through a pipeline:

* dense: ``float32`` array of shape ``(n, d)``;
* sparse: ``scipy.sparse.csr_matrix`` of shape ``(n, vocabulary)``, float32 values;
* multi-vector: :class:`MultiVectorEmbeddings`, one flat ``(total, d)`` array plus offsets;
* binary: :class:`BinaryCodes`, sign bits packed eight to a byte.
"""

from __future__ import annotations

from enum import Enum
from typing import Mapping, Sequence, Union

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.errors import InvalidInputError, StateError
from embedlab.state_checks import check_array, check_csr, check_offsets, check_range


class EmbeddingKind(str, Enum):
    """What an encoder produces and an index consumes."""

    DENSE = "dense"
    SPARSE = "sparse"
    MULTI_VECTOR = "multivector"
    BINARY = "binary"


def _first_bad_row(values: np.ndarray) -> int:
    bad = ~np.isfinite(values)
    if values.ndim > 1:
        bad = bad.any(axis=tuple(range(1, values.ndim)))
    return int(np.flatnonzero(bad)[0])


#: Entries checked at once by :func:`all_finite` (a 1 MiB temporary instead of one as large as the array).
FINITE_BLOCK = 1 << 20


def all_finite(array: np.ndarray) -> bool:
    """Whether every entry of a C-contiguous array is finite, checked in blocks of
    :data:`FINITE_BLOCK` entries (bounded temporary memory for large corpora)."""
    flat = array.reshape(-1)
    return all(np.isfinite(flat[start:start + FINITE_BLOCK]).all() for start in range(0, flat.size, FINITE_BLOCK))


def as_dense(x: object, *, dim: int | None = None, name: str = "embeddings",
             allow_empty: bool = False) -> np.ndarray:
    """Return ``x`` as a C-contiguous float32 ``(n, d)`` array, checking shape and finiteness.

    >>> as_dense([[1, 2], [3, 4]]).dtype
    dtype('float32')
    """
    if sp.issparse(x):
        raise InvalidInputError(f"{name}: expected dense vectors, got a sparse matrix")
    array = np.ascontiguousarray(x, dtype=np.float32)
    if array.ndim == 1:
        raise InvalidInputError(f"{name}: expected a 2-d (n, d) array, got shape {array.shape}; "
                                "use x[None, :] for a single vector")
    if array.ndim != 2:
        raise InvalidInputError(f"{name}: expected a 2-d (n, d) array, got shape {array.shape}")
    if array.shape[0] == 0 and not allow_empty:
        raise InvalidInputError(f"{name}: no vectors (empty input)")
    if dim is not None and array.shape[1] != dim:
        raise InvalidInputError(f"{name}: dimension {array.shape[1]} does not match the expected {dim}")
    if array.size and not all_finite(array):
        raise InvalidInputError(f"{name}: row {_first_bad_row(array)} contains NaN or inf")
    return array


def as_sparse(x: object, *, dim: int | None = None, name: str = "embeddings",
              allow_empty: bool = False) -> sp.csr_matrix:
    """Return ``x`` as a canonical float32 CSR matrix (sorted indices, duplicates summed)."""
    if not sp.issparse(x):
        raise InvalidInputError(f"{name}: expected a scipy sparse matrix, got {type(x).__name__}")
    matrix = sp.csr_matrix(x, dtype=np.float32, copy=True)
    if matrix.shape[0] == 0 and not allow_empty:
        raise InvalidInputError(f"{name}: no vectors (empty input)")
    if dim is not None and matrix.shape[1] != dim:
        raise InvalidInputError(f"{name}: vocabulary size {matrix.shape[1]} does not match the "
                                f"expected {dim}")
    if matrix.nnz and not np.isfinite(matrix.data).all():
        bad = int(np.flatnonzero(~np.isfinite(matrix.data))[0])
        row = int(np.searchsorted(matrix.indptr, bad, side="right") - 1)
        raise InvalidInputError(f"{name}: row {row} contains NaN or inf")
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


@attrs.frozen(eq=False)
class MultiVectorEmbeddings:
    """Variable numbers of vectors per item, stored flat.

    ``vectors[offsets[i]:offsets[i + 1]]`` are the vectors of item ``i``.
    """

    vectors: np.ndarray = attrs.field(converter=lambda v: np.ascontiguousarray(v, dtype=np.float32))
    offsets: np.ndarray = attrs.field(converter=lambda o: np.ascontiguousarray(o, dtype=np.int64))

    def __attrs_post_init__(self) -> None:
        if self.vectors.ndim != 2:
            raise InvalidInputError(f"multi-vector: vectors must be 2-d, got shape {self.vectors.shape}")
        offsets = self.offsets
        if offsets.ndim != 1 or offsets.size == 0 or offsets[0] != 0:
            raise InvalidInputError("multi-vector: offsets must be 1-d and start at 0")
        if offsets[-1] != self.vectors.shape[0] or (np.diff(offsets) < 0).any():
            raise InvalidInputError("multi-vector: offsets must be non-decreasing and end at the "
                                    f"number of vectors ({self.vectors.shape[0]})")
        if self.vectors.size and not np.isfinite(self.vectors).all():
            row = _first_bad_row(self.vectors)
            item = int(np.searchsorted(offsets, row, side="right") - 1)
            raise InvalidInputError(f"multi-vector: item {item} contains NaN or inf")

    @classmethod
    def from_list(cls, items: Sequence[np.ndarray], dim: int | None = None) -> MultiVectorEmbeddings:
        """Build from one ``(n_i, d)`` array per item (not for hot paths)."""
        if not items:
            if dim is None:
                raise InvalidInputError("multi-vector: empty list needs an explicit dim")
            return cls(np.zeros((0, dim), np.float32), np.zeros(1, np.int64))
        arrays = [np.asarray(a, dtype=np.float32).reshape(-1, np.shape(a)[-1]) for a in items]
        counts = np.fromiter((a.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
        return cls(np.concatenate(arrays, axis=0), np.concatenate([[0], np.cumsum(counts)]))

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def counts(self) -> np.ndarray:
        """Number of vectors of each item."""
        return np.diff(self.offsets)

    def item(self, i: int) -> np.ndarray:
        """The ``(n_i, d)`` vectors of item ``i`` (a view)."""
        return self.vectors[self.offsets[i]:self.offsets[i + 1]]

    def take(self, positions: np.ndarray) -> MultiVectorEmbeddings:
        """A new container with the given items, in the given order."""
        positions = np.asarray(positions, dtype=np.int64)
        starts, ends = self.offsets[positions], self.offsets[positions + 1]
        counts = ends - starts
        new_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        rows = np.repeat(starts - new_offsets[:-1], counts) + np.arange(new_offsets[-1])
        return MultiVectorEmbeddings(self.vectors[rows], new_offsets)


@attrs.frozen(eq=False)
class BinaryCodes:
    """Bit vectors of length ``dim`` packed big-endian into ``uint8`` rows (``numpy.packbits``)."""

    bits: np.ndarray = attrs.field(converter=lambda b: np.ascontiguousarray(b, dtype=np.uint8))
    dim: int = attrs.field(converter=int)

    def __attrs_post_init__(self) -> None:
        if self.bits.ndim != 2 or self.bits.shape[1] != (self.dim + 7) // 8:
            raise InvalidInputError(f"binary codes: expected shape (n, {(self.dim + 7) // 8}) for "
                                    f"{self.dim} bits, got {self.bits.shape}")

    @classmethod
    def from_signs(cls, x: np.ndarray) -> BinaryCodes:
        """One bit per dimension: 1 where the value is positive."""
        dense = as_dense(x, allow_empty=True)
        return cls(np.packbits(dense > 0, axis=1), dense.shape[1])

    def unpack(self) -> np.ndarray:
        """``(n, dim)`` array of 0/1 ``uint8``."""
        return np.unpackbits(self.bits, axis=1, count=self.dim)

    def __len__(self) -> int:
        return int(self.bits.shape[0])


Embeddings = Union[np.ndarray, sp.csr_matrix, MultiVectorEmbeddings, BinaryCodes]


def kind_of(x: Embeddings) -> EmbeddingKind:
    """The :class:`EmbeddingKind` of a container."""
    if isinstance(x, MultiVectorEmbeddings):
        return EmbeddingKind.MULTI_VECTOR
    if isinstance(x, BinaryCodes):
        return EmbeddingKind.BINARY
    if sp.issparse(x):
        return EmbeddingKind.SPARSE
    if isinstance(x, np.ndarray):
        return EmbeddingKind.DENSE
    raise InvalidInputError(f"not an embedding container: {type(x).__name__}")


def count(x: Embeddings) -> int:
    """Number of items (rows) in any embedding container."""
    return len(x) if isinstance(x, (MultiVectorEmbeddings, BinaryCodes)) else int(x.shape[0])


def take(x: Embeddings, positions: np.ndarray) -> Embeddings:
    """The rows (items) at ``positions`` of any embedding container, in that order."""
    positions = np.asarray(positions, dtype=np.int64)
    if isinstance(x, MultiVectorEmbeddings):
        return x.take(positions)
    if isinstance(x, BinaryCodes):
        return BinaryCodes(x.bits[positions], x.dim)
    return x[positions]


def to_arrays(x: Embeddings) -> dict[str, np.ndarray]:
    """Flatten a container into named arrays (for `.npy` persistence)."""
    kind = kind_of(x)
    if kind is EmbeddingKind.DENSE:
        return {"dense": x}
    if kind is EmbeddingKind.SPARSE:
        csr = sp.csr_matrix(x)
        return {"data": csr.data, "indices": csr.indices, "indptr": csr.indptr,
                "shape": np.asarray(csr.shape, dtype=np.int64)}
    if kind is EmbeddingKind.MULTI_VECTOR:
        return {"vectors": x.vectors, "offsets": x.offsets}
    return {"bits": x.bits, "dim": np.asarray([x.dim], dtype=np.int64)}


def from_arrays(kind: EmbeddingKind | str, arrays: Mapping[str, np.ndarray],
                where: str = "saved embeddings") -> Embeddings:
    """Inverse of :func:`to_arrays`, checking every array (the input may come from disk):
    :class:`~embedlab.errors.StateError` naming ``where`` when one is missing or inconsistent."""
    kind = EmbeddingKind(kind)
    missing = sorted({EmbeddingKind.DENSE: {"dense"}, EmbeddingKind.SPARSE: {"data", "indices", "indptr", "shape"},
                      EmbeddingKind.MULTI_VECTOR: {"vectors", "offsets"},
                      EmbeddingKind.BINARY: {"bits", "dim"}}[kind] - set(arrays))
    if missing:
        raise StateError(f"{where}: {kind.value} embeddings lack the array(s) {missing}")
    if kind is EmbeddingKind.DENSE:
        dense = check_array(arrays["dense"], f"{where} dense", dtype=np.float32, ndim=2, finite=True)
        return dense if dense.flags.c_contiguous else np.ascontiguousarray(dense)  # a memory map stays one
    if kind is EmbeddingKind.SPARSE:
        shape = check_array(arrays["shape"], f"{where} shape", kinds="iu", shape=(2,))
        if (shape < 0).any():
            raise StateError(f"{where}: negative sparse shape {shape.tolist()}")
        check_csr(arrays["data"], arrays["indices"], arrays["indptr"], int(shape[1]), where, n_rows=int(shape[0]))
        return sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]),
                             shape=(int(shape[0]), int(shape[1])))
    if kind is EmbeddingKind.MULTI_VECTOR:
        vectors = check_array(arrays["vectors"], f"{where} vectors", dtype=np.float32, ndim=2, finite=True)
        check_offsets(arrays["offsets"], None, vectors.shape[0], f"{where} offsets")
        return MultiVectorEmbeddings(vectors, arrays["offsets"])
    dim = check_range(check_array(arrays["dim"], f"{where} dim", kinds="iu", shape=(1,)), 1 << 40, f"{where} dim")
    bits = check_array(arrays["bits"], f"{where} bits", dtype=np.uint8, shape=(None, (int(dim[0]) + 7) // 8))
    return BinaryCodes(bits, int(dim[0]))
