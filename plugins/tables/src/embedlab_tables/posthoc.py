"""The benchmark's table compressors applied after training to a fixed matrix of vectors.

A CTR table is learned together with its compression; a retrieval corpus is a fixed matrix of
passage embeddings. Of the benchmark's methods, those that act on the *values* of a trained table
have a post-hoc counterpart, registered here as ``compressor`` components (the core protocol:
``fit`` on the vectors, ``encode``/``decode``, ``bytes_per_vector``, ``save``/``load``):

============== ==================================================================================
``table-int``  INT8/INT16 (``scale="global"``: one symmetric scale for the whole table) and ALPT's
               per-row scale (``scale="row"``: ALPT learns it during training, here each row's
               scale minimises its squared error, the offline target of a learned step size)
``table-prune`` DeepLight/PEP: keep the ``keep`` share of each row's entries of largest magnitude
               (the threshold PEP learns and DeepLight schedules, applied once), stored as
               uint16 positions + float32 values
``table-tt``   TT-Rec: the (rows x dim) matrix as a three-core tensor train (TT-SVD, rank ``rank``)
``table-dedup`` Dedup: rows merged onto near-duplicate representatives (the benchmark's LSH
               procedure, :func:`embedlab_tables.methods.dynamic.deduplicate`)
============== ==================================================================================

DPQ's and MGQE's codes, fitted to a fixed matrix, are product quantisation: the core ``pq``
compressor. Hash-based methods (hashing trick, Q-R, ROBE, DHE, Unified Embedding, AdaptEmb) and
frequency-driven ones (MGQE's groups, MDE, AutoSrh) need ids and their frequencies, and
search-then-retrain methods (AutoDim, OptEmbed) need the training loss: none has a post-hoc meaning
on a matrix of passage vectors (README, "Retrieval side").

``table-tt`` and ``table-dedup`` compress the *table*: their model (cores, representatives) is most
of their memory, so :attr:`memory_bytes` matters as much as :attr:`bytes_per_vector`; the
benchmark script reports both and the amortised total. ``table-tt`` encodes only the rows it was
fitted on (its codes are row numbers): a tensor train cannot take a new row without a refit.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab_tables.methods.dynamic import deduplicate
from embedlab_tables.methods.static import factor_dim

_v = attrs.validators
#: Candidate clipping points of the per-row scale, as fractions of the row's largest magnitude.
ROW_CLIPS = np.linspace(0.3, 1.0, 36)


class _PostHoc(Component):
    kind = "compressor"

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.dim: int | None = None

    def _check_fitted(self) -> int:
        if self.dim is None:
            raise NotFittedError(f"{self.name}: call fit(vectors) first")
        return self.dim

    def _vectors(self, vectors: np.ndarray, *, allow_empty: bool = True) -> np.ndarray:
        return as_dense(vectors, dim=self.dim, allow_empty=allow_empty)

    def _codes(self, codes: np.ndarray, width: int, dtype: np.dtype) -> np.ndarray:
        array = np.asarray(codes)
        if array.ndim != 2 or array.shape[1] != width or array.dtype != dtype:
            raise InvalidInputError(f"{self.name} codes: expected an (n, {width}) {np.dtype(dtype).name} array, got "
                                    f"shape {array.shape} {array.dtype.name}; pass codes made by encode()")
        return array

    @property
    def memory_bytes(self) -> int:
        """Bytes of the fitted model besides the codes (scales, cores, representatives)."""
        return 0


# -- quantisation ---------------------------------------------------------------------------------------

class TableInt(_PostHoc):
    """INT8/INT16 codes of every value, with one scale for the whole matrix (the benchmark's INT8 /
    INT16) or one per row (ALPT's per-row step size, chosen to minimise the row's squared error).

    Codes are bytes: ``dim`` int8 (int16) values, then the row's float32 scale with ``scale="row"``.

    >>> q = TableInt(bits=8).fit(np.array([[0.5, -1.0], [0.25, 0.0]], dtype=np.float32))
    >>> q.decode(q.encode(np.array([[0.5, -1.0]], dtype=np.float32))).round(2).tolist()
    [[0.5, -1.0]]
    """

    name = "table-int"

    @attrs.frozen
    class Config:
        """``bits``: 8 or 16; ``scale``: ``"global"`` (INT8/INT16) or ``"row"`` (ALPT-style)."""

        bits: int = attrs.field(default=8, validator=_v.in_((8, 16)))
        scale: str = attrs.field(default="global", validator=_v.in_(("global", "row")))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.global_scale: float | None = None

    @property
    def qmax(self) -> int:
        return 2 ** (self.config.bits - 1) - 1

    @property
    def _dtype(self) -> np.dtype:
        return np.dtype(np.int8 if self.config.bits == 8 else np.int16)

    def fit(self, vectors: np.ndarray) -> TableInt:
        """The global scale (largest magnitude / qmax); nothing to learn with ``scale="row"``."""
        x = as_dense(vectors)
        self.dim = x.shape[1]
        self.global_scale = float(max(np.abs(x).max(), 1e-12) / self.qmax)
        return self

    @property
    def bytes_per_vector(self) -> float:
        dim = self._check_fitted()
        return float(dim * self._dtype.itemsize + (4 if self.config.scale == "row" else 0))

    def row_scales(self, x: np.ndarray) -> np.ndarray:
        """Per-row scale minimising ``|x - scale * round(x / scale)|^2`` over :data:`ROW_CLIPS`."""
        peak = np.maximum(np.abs(x).max(axis=1), 1e-12)
        best, best_error = peak / self.qmax, np.full(len(x), np.inf)
        for clip in ROW_CLIPS:
            scale = (clip * peak / self.qmax).astype(np.float32)
            error = ((x - self._quantise(x, scale[:, None]) * scale[:, None]) ** 2).sum(1)
            better = error < best_error
            best, best_error = np.where(better, scale, best), np.where(better, error, best_error)
        return best.astype(np.float32)

    def _quantise(self, x: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
        return np.clip(np.rint(x / scale), -self.qmax, self.qmax)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        self._check_fitted()
        x = self._vectors(vectors)
        if self.config.scale == "global":
            scale: np.ndarray | float = self.global_scale  # type: ignore[assignment]
            values = self._quantise(x, scale).astype(self._dtype)
            return values.view(np.uint8).reshape(len(x), -1)
        scales = self.row_scales(x)
        values = self._quantise(x, scales[:, None]).astype(self._dtype)
        return np.concatenate([values.view(np.uint8).reshape(len(x), -1),
                               scales[:, None].view(np.uint8).reshape(len(x), 4)], axis=1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        dim = self._check_fitted()
        codes = np.ascontiguousarray(self._codes(codes, int(self.bytes_per_vector), np.dtype(np.uint8)))
        width = dim * self._dtype.itemsize
        values = codes[:, :width].copy().view(self._dtype).astype(np.float32)
        if self.config.scale == "global":
            return values * np.float32(self.global_scale)
        return values * codes[:, width:].copy().view(np.float32)

    def save(self, path: str | Path) -> None:
        save_state(path, self, arrays={"scale": np.array([self.global_scale], dtype=np.float32)},
                   meta={"dim": self._check_fitted()})

    @classmethod
    def load(cls, path: str | Path) -> TableInt:
        state = load_state(path, kind=cls.kind, name=cls.name)
        q = state.build(cls)
        q.dim = _dim(state)
        q.global_scale = float(state.array("scale", dtype=np.float32, shape=(1,), finite=True)[0])
        if not q.global_scale > 0:
            raise state.error("scale.npy must be positive")
        return q


# -- pruning --------------------------------------------------------------------------------------------

class TablePrune(_PostHoc):
    """Magnitude pruning of each row: the ``keep`` share of its entries (at least one) as uint16
    positions followed by float32 values; the others decode to zero.

    >>> p = TablePrune(keep=0.5).fit(np.array([[0.1, -2.0, 0.3, 0.0]], dtype=np.float32))
    >>> p.decode(p.encode(np.array([[0.1, -2.0, 0.3, 0.0]], dtype=np.float32))).tolist()
    [[0.0, -2.0, 0.30000001192092896, 0.0]]
    """

    name = "table-prune"

    @attrs.frozen
    class Config:
        """``keep``: share of the dimensions kept in every row, in (0, 1]."""

        keep: float = attrs.field(default=0.25, converter=float, validator=[_v.gt(0.0), _v.le(1.0)])

    @property
    def kept(self) -> int:
        return max(1, int(round(self.config.keep * self._check_fitted())))

    def fit(self, vectors: np.ndarray) -> TablePrune:
        dim = as_dense(vectors).shape[1]
        if dim > 65536:
            raise InvalidInputError(f"{self.name}: positions are uint16, dimension {dim} is above 65536")
        self.dim = dim
        return self

    @property
    def bytes_per_vector(self) -> float:
        return float(self.kept * 6)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        x = self._vectors(vectors)
        k = self.kept
        positions = np.sort(np.argpartition(-np.abs(x), k - 1, axis=1)[:, :k], axis=1).astype(np.uint16)
        values = np.take_along_axis(x, positions.astype(np.int64), axis=1).astype(np.float32)
        return np.concatenate([positions.view(np.uint8), values.view(np.uint8)], axis=1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        dim, k = self._check_fitted(), self.kept
        codes = np.ascontiguousarray(self._codes(codes, 6 * k, np.dtype(np.uint8)))
        positions = codes[:, :2 * k].copy().view(np.uint16).astype(np.int64)
        if positions.size and positions.max() >= dim:
            raise InvalidInputError(f"{self.name} codes: a position is >= the dimension {dim}")
        out = np.zeros((len(codes), dim), dtype=np.float32)
        np.put_along_axis(out, positions, codes[:, 2 * k:].copy().view(np.float32), axis=1)
        return out

    def save(self, path: str | Path) -> None:
        save_state(path, self, meta={"dim": self._check_fitted()})

    @classmethod
    def load(cls, path: str | Path) -> TablePrune:
        state = load_state(path, kind=cls.kind, name=cls.name)
        p = state.build(cls)
        p.dim = _dim(state)
        return p


# -- tensor train ---------------------------------------------------------------------------------------

def tt_shape(rows: int, dim: int) -> tuple[list[int], list[int]]:
    """Three row factors whose product covers ``rows`` (near-cubic) and TT-Rec's three factors of ``dim``."""
    n1 = math.ceil(rows ** (1 / 3))
    n2 = math.ceil(math.sqrt(rows / n1))
    return [n1, n2, math.ceil(rows / n1 / n2)], factor_dim(dim)


def tt_svd(matrix: np.ndarray, rows: list[int], dims: list[int], rank: int) -> list[np.ndarray]:
    """TT-SVD of ``matrix`` (zero-padded to ``prod(rows)`` rows) in TT-matrix format: cores
    ``(r_prev, rows[k], dims[k], r_next)`` with ranks at most ``rank`` (singular values below
    1e-6 of the largest dropped), row ``i = (i1, i2, i3)``
    row-major and column ``j = (j1, j2, j3)`` likewise."""
    n, d = matrix.shape
    padded = np.zeros((int(np.prod(rows)), d), dtype=np.float64)
    padded[:n] = matrix
    # (i1, i2, i3, j1, j2, j3) -> (i1, j1, i2, j2, i3, j3)
    tensor = padded.reshape(*rows, *dims).transpose(0, 3, 1, 4, 2, 5)
    cores, previous = [], 1
    rest = tensor.reshape(previous * rows[0] * dims[0], -1)
    for k in range(2):
        u, s, vt = np.linalg.svd(rest, full_matrices=False)
        r = max(1, min(rank, int((s > s[0] * 1e-6).sum())))  # numerically zero values dropped
        cores.append(u[:, :r].reshape(previous, rows[k], dims[k], r).astype(np.float32))
        rest = (s[:r, None] * vt[:r]).reshape(r * rows[k + 1] * dims[k + 1], -1)
        previous = r
    cores.append(rest.reshape(previous, rows[2], dims[2], 1).astype(np.float32))
    return cores


def tt_rows(cores: list[np.ndarray], positions: np.ndarray) -> np.ndarray:
    """Rows ``positions`` of the matrix the cores represent."""
    a, b, c = cores
    n2, n3 = b.shape[1], c.shape[1]
    i1, i2, i3 = positions // (n2 * n3), (positions // n3) % n2, positions % n3
    left = a[0][i1]                                               # (n, d1, r1)
    mid = np.einsum("nxr,nrys->nxys", left, b.transpose(1, 0, 2, 3)[i2])   # (n, d1, d2, r2)
    out = np.einsum("nxys,nsz->nxyz", mid, c[..., 0].transpose(1, 0, 2)[i3])  # (n, d1, d2, d3)
    return out.reshape(len(positions), -1)


class TableTT(_PostHoc):
    """TT-Rec's three-core tensor train of the whole matrix, fitted by TT-SVD; ``order="pca"`` first
    sorts the rows by their first principal component so that rows sharing leading index digits
    are similar (the stored permutation is part of the codes: a code is the row's position).

    Codes are uint32 row positions; only the fitted rows can be encoded.
    """

    name = "table-tt"

    @attrs.frozen
    class Config:
        """``rank``: largest TT rank; ``order``: ``"given"`` or ``"pca"`` (rows sorted before the SVD)."""

        rank: int = attrs.field(default=32, validator=[_v.instance_of(int), _v.ge(1)])
        order: str = attrs.field(default="given", validator=_v.in_(("given", "pca")))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.cores: list[np.ndarray] | None = None
        self._rows: dict[bytes, int] = {}

    def fit(self, vectors: np.ndarray) -> TableTT:
        x = as_dense(vectors)
        rows, dims = tt_shape(len(x), x.shape[1])
        order = np.arange(len(x))
        if self.config.order == "pca":
            centred = x - x.mean(0)
            first = np.linalg.svd(centred[: min(len(x), 20000)], full_matrices=False)[2][0]
            order = np.argsort(centred @ first, kind="stable")
        self.cores = tt_svd(x[order], rows, dims, self.config.rank)
        self.dim = x.shape[1]
        self._rows = {_row_key(x[i]): slot for slot, i in enumerate(order)}
        return self

    @property
    def bytes_per_vector(self) -> float:
        self._check_fitted()
        return 4.0

    @property
    def memory_bytes(self) -> int:
        self._check_fitted()
        return int(sum(core.nbytes for core in self.cores or ()))

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        self._check_fitted()
        x = self._vectors(vectors)
        codes = np.empty(len(x), dtype=np.uint32)
        for i, row in enumerate(x):
            slot = self._rows.get(_row_key(row))
            if slot is None:
                raise InvalidInputError(f"{self.name}: row {i} is not one of the fitted rows; a tensor train "
                                        "stores a fixed table: refit it on all the vectors")
            codes[i] = slot
        return codes[:, None]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        self._check_fitted()
        positions = self._codes(codes, 1, np.dtype(np.uint32))[:, 0].astype(np.int64)
        capacity = int(np.prod([core.shape[1] for core in self.cores or ()]))
        if positions.size and positions.max() >= capacity:
            raise InvalidInputError(f"{self.name} codes: a row position is >= {capacity}")
        return tt_rows(self.cores, positions)  # type: ignore[arg-type]

    def save(self, path: str | Path) -> None:
        """The three cores and the 16-byte digests of the fitted rows in slot order (so that
        ``encode`` still recognises them)."""
        self._check_fitted()
        keys = np.zeros((len(self._rows), 16), dtype=np.uint8)
        for key, slot in self._rows.items():
            keys[slot] = np.frombuffer(key, dtype=np.uint8)
        save_state(path, self, arrays={**{f"core{k}": core for k, core in enumerate(self.cores or ())},
                                       "row_keys": keys})

    @classmethod
    def load(cls, path: str | Path) -> TableTT:
        state = load_state(path, kind=cls.kind, name=cls.name)
        tt = state.build(cls)
        cores = [np.array(state.array(f"core{k}", dtype=np.float32, ndim=4, finite=True)) for k in range(3)]
        ranks = [(c.shape[0], c.shape[3]) for c in cores]
        if ranks[0][0] != 1 or ranks[2][1] != 1 or ranks[0][1] != ranks[1][0] or ranks[1][1] != ranks[2][0] \
                or max(r for pair in ranks for r in pair) > tt.config.rank or 0 in cores[1].shape:
            raise state.error(f"cores of shapes {[c.shape for c in cores]} do not chain with rank <= {tt.config.rank}")
        keys = state.array("row_keys", dtype=np.uint8, shape=(None, 16))
        if len(keys) > int(np.prod([c.shape[1] for c in cores])):
            raise state.error(f"row_keys.npy has {len(keys)} rows, more than the cores hold")
        tt.cores, tt.dim = cores, int(np.prod([c.shape[2] for c in cores]))
        tt._rows = {row.tobytes(): slot for slot, row in enumerate(keys)}
        return tt


def _row_key(row: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(row, dtype=np.float32).tobytes(), digest_size=16).digest()


# -- deduplication --------------------------------------------------------------------------------------

class TableDedup(_PostHoc):
    """Dedup of rows: ``1/ratio`` of them are kept as representatives (the benchmark's LSH pass with
    its ``sim``/``fp`` rule, then its nearest-pair fallback); a vector's code is the id of its
    nearest representative (L2), so new vectors can be encoded too.
    """

    name = "table-dedup"

    @attrs.frozen
    class Config:
        """``ratio``: rows per kept representative (> 1); ``sim``/``fp``: the LSH pass's rule
        (a share ``sim`` of values within ``fp``); ``seed``."""

        ratio: float = attrs.field(default=2.0, converter=float, validator=_v.gt(1.0))
        sim: float = attrs.field(default=0.7, converter=float, validator=[_v.ge(0.0), _v.le(1.0)])
        fp: float = attrs.field(default=0.01, converter=float, validator=_v.gt(0.0))
        seed: int = attrs.field(default=0, validator=[_v.instance_of(int), _v.ge(0)])

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.representatives: np.ndarray | None = None
        self.stats: dict[str, float] = {}

    def fit(self, vectors: np.ndarray) -> TableDedup:
        x = as_dense(vectors)
        target = max(1, int(len(x) / self.config.ratio))
        remap, self.stats = deduplicate(x, target, fp=self.config.fp, sim=self.config.sim, seed=self.config.seed)
        self.representatives = np.ascontiguousarray(x[np.unique(remap)])
        self.dim = x.shape[1]
        return self

    @property
    def _dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if len(self.representatives) <= 65536 else np.uint32)  # type: ignore[arg-type]

    @property
    def bytes_per_vector(self) -> float:
        self._check_fitted()
        return float(self._dtype.itemsize)

    @property
    def memory_bytes(self) -> int:
        self._check_fitted()
        return int(self.representatives.nbytes)  # type: ignore[union-attr]

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        self._check_fitted()
        x, reps = self._vectors(vectors), self.representatives
        norms = (reps ** 2).sum(1)  # type: ignore[operator]
        codes = np.empty(len(x), dtype=self._dtype)
        for start in range(0, len(x), 4096):
            block = x[start:start + 4096]
            codes[start:start + len(block)] = (norms[None, :] - 2 * block @ reps.T).argmin(1)  # type: ignore[union-attr]
        return codes[:, None]

    def decode(self, codes: np.ndarray) -> np.ndarray:
        self._check_fitted()
        ids = self._codes(codes, 1, self._dtype)[:, 0].astype(np.int64)
        if ids.size and ids.max() >= len(self.representatives):  # type: ignore[arg-type]
            raise InvalidInputError(f"{self.name} codes: a representative id is >= {len(self.representatives)}")
        return self.representatives[ids]  # type: ignore[index]

    def save(self, path: str | Path) -> None:
        self._check_fitted()
        save_state(path, self, arrays={"representatives": self.representatives})

    @classmethod
    def load(cls, path: str | Path) -> TableDedup:
        state = load_state(path, kind=cls.kind, name=cls.name)
        d = state.build(cls)
        d.representatives = np.array(state.array("representatives", dtype=np.float32, shape=(None, None),
                                                 finite=True))
        if 0 in d.representatives.shape:
            raise state.error("representatives.npy is empty")
        d.dim = d.representatives.shape[1]
        return d


def _dim(state: Any) -> int:
    return int(state.value("dim", int, minimum=1))


COMPRESSORS = (TableInt, TablePrune, TableTT, TableDedup)
