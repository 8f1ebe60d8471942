"""Structural checks of loaded state: ``.npy`` headers against file sizes, dtypes, shapes, index
ranges, offset arrays, manifest fields.

Checksums only prove that a file is the one the manifest names; a state written by someone else
can carry consistent checksums and still hold out-of-range indices that would make a kernel read
outside its arrays. Every loader checks what it reads with these functions, which raise
:class:`StateError` naming the file and the problem. ``where`` is the file (or field) named in the
message.
"""

from __future__ import annotations

import math
import mmap as mmap_module
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from embedlab.errors import StateError

#: Array dtype kinds a state may hold: bool, integers, floats, complex, bytes, unicode,
#: datetime/timedelta. Structured (``V``) and object (``O``) arrays are refused.
ARRAY_KINDS = "biufcSUMm"


def release_mapped(array: np.ndarray) -> None:
    """Drop the pages of ``array``, a C-contiguous view of a read-only memory-mapped ``.npy``
    (:func:`read_npy` with ``mmap=True``), from this process's resident memory (``madvise
    MADV_DONTNEED``); they stay in the page cache and are read again if touched. Lets a reader
    that walks a mapped file block by block hold one block, not the whole file. A no-op for
    arrays that are not such views, and where ``madvise`` is not available."""
    mapping = getattr(array, "_mmap", None)
    advise = getattr(mapping, "madvise", None)
    if advise is None or not hasattr(mmap_module, "MADV_DONTNEED") or array.flags.writeable \
            or not array.flags.c_contiguous or not array.nbytes:
        return
    base = np.frombuffer(mapping, np.uint8).ctypes.data
    start = array.ctypes.data - base
    if start < 0 or start + array.nbytes > len(mapping):
        return
    first = start - start % mmap_module.PAGESIZE
    advise(mmap_module.MADV_DONTNEED, first, start + array.nbytes - first)


def read_npy(file: Path, *, mmap: bool = False) -> np.ndarray:
    """Read a ``.npy`` file after checking that its header is well formed and declares exactly the
    bytes the file holds (so a forged shape can neither over-read nor allocate absurd memory)."""
    size = file.stat().st_size
    try:
        with open(file, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle, max_header_size=1 << 16)
            elif version in ((2, 0), (3, 0)):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle, max_header_size=1 << 16)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            offset = handle.tell()
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, RecursionError) as error:
        raise StateError(f"{file}: not a valid .npy file ({error or 'empty'})") from None
    if dtype.hasobject or dtype.kind not in ARRAY_KINDS or dtype.fields is not None or dtype.itemsize == 0:
        raise StateError(f"{file}: arrays of dtype {dtype} are not allowed in a saved state")
    if not all(isinstance(n, int) and n >= 0 for n in shape):
        raise StateError(f"{file}: invalid shape {shape} in the .npy header")
    expected = math.prod(shape) * dtype.itemsize
    if offset + expected != size:
        raise StateError(f"{file}: the .npy header declares shape {shape} of {dtype} ({expected} bytes "
                         f"of data) but the file holds {size - offset}")
    try:
        if mmap and expected:
            return np.load(file, mmap_mode="r", allow_pickle=False)
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError) as error:
        raise StateError(f"{file}: unreadable array ({error})") from None


def check_array(array: Any, where: str, *, dtype: Any = None, kinds: str | None = None,
                ndim: int | None = None, shape: Sequence[int | None] | None = None,
                finite: bool = False) -> np.ndarray:
    """``array`` unchanged, or :class:`StateError` when its dtype (exact ``dtype``, one of several,
    or a dtype kind among ``kinds``), dimensions, ``shape`` (``None`` matches any length) or
    finiteness is wrong."""
    if not isinstance(array, np.ndarray):
        raise StateError(f"{where}: expected an array, got {type(array).__name__}")
    if dtype is not None:
        allowed = [np.dtype(d) for d in (dtype if isinstance(dtype, (tuple, list)) else (dtype,))]
        if array.dtype not in allowed:
            raise StateError(f"{where}: dtype {array.dtype}, expected {' or '.join(map(str, allowed))}")
    if kinds is not None and (array.dtype.kind not in kinds or not array.dtype.isnative):
        raise StateError(f"{where}: dtype {array.dtype} is not allowed here")
    if shape is not None:
        ndim = len(shape)
    if ndim is not None and array.ndim != ndim:
        raise StateError(f"{where}: {array.ndim} dimension(s) (shape {array.shape}), expected {ndim}")
    if shape is not None and any(e is not None and e != n for e, n in zip(shape, array.shape)):
        wanted = tuple("*" if e is None else e for e in shape)
        raise StateError(f"{where}: shape {array.shape}, expected {wanted}".replace("'*'", "*"))
    if finite and array.dtype.kind in "fc" and array.size and not np.isfinite(array).all():
        raise StateError(f"{where}: holds NaN or inf values")
    return array


def check_range(values: np.ndarray, upper: int, where: str, *, lower: int = 0) -> np.ndarray:
    """``values`` (integers) unchanged, or :class:`StateError` unless all lie in ``[lower, upper)``."""
    if values.dtype.kind not in "iu":
        raise StateError(f"{where}: dtype {values.dtype}, expected integers")
    if values.size:
        low, high = int(values.min()), int(values.max())
        if low < lower or high >= upper:
            raise StateError(f"{where}: values in [{low}, {high}] outside the valid range "
                             f"[{lower}, {upper - 1}]")
    return values


def check_offsets(offsets: np.ndarray, count: int | None, total: int, where: str, *,
                  strict: bool = False) -> np.ndarray:
    """A CSR-style pointer array: 1-d integers, ``count + 1`` entries (any length when ``count``
    is None), starting at 0, non-decreasing (increasing when ``strict``), ending at ``total``."""
    check_array(offsets, where, kinds="iu", ndim=1)
    if count is not None and offsets.size != count + 1:
        raise StateError(f"{where}: {offsets.size} entries, expected {count + 1}")
    if offsets.size == 0 or int(offsets[0]) != 0 or int(offsets[-1]) != total:
        first = int(offsets[0]) if offsets.size else None
        last = int(offsets[-1]) if offsets.size else None
        raise StateError(f"{where}: must run from 0 to {total}, runs from {first} to {last}")
    steps = np.diff(offsets.astype(np.int64))
    if (steps <= 0).any() if strict else (steps < 0).any():
        raise StateError(f"{where}: not {'strictly increasing' if strict else 'non-decreasing'}")
    return offsets


def check_csr(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, n_columns: int,
              where: str, *, n_rows: int | None = None) -> None:
    """The three arrays of a CSR matrix with ``n_columns`` columns are consistent."""
    check_array(data, f"{where} data", kinds="f", ndim=1, finite=True)
    check_array(indices, f"{where} indices", kinds="iu", ndim=1)
    if indices.size != data.size:
        raise StateError(f"{where}: {indices.size} indices for {data.size} values")
    check_offsets(indptr, n_rows, data.size, f"{where} indptr")
    check_range(indices, n_columns, f"{where} indices")


def check_field(value: Any, where: str, expected: type | tuple[type, ...], *,
                minimum: float | None = None, maximum: float | None = None, finite: bool = True) -> Any:
    """A manifest value of the ``expected`` type (bool is never an int or a float here), in range
    (and finite unless ``finite=False``)."""
    types = expected if isinstance(expected, tuple) else (expected,)
    numeric = any(t in (int, float) for t in types)
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise StateError(f"{where}: expected {names}, got {type(value).__name__} {_short(value)}")
    if numeric and not isinstance(value, bool) and isinstance(value, (int, float)):
        if finite and isinstance(value, float) and not math.isfinite(value):
            raise StateError(f"{where}: {value} is not a finite number")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise StateError(f"{where}: {value} outside [{minimum}, {maximum}]")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def regular_file(file: Path) -> os.stat_result:
    """``lstat`` of ``file``, or :class:`StateError` unless it is a regular file (not a link or
    a device, which a forged state could use to read elsewhere or never finish reading)."""
    import stat

    try:
        info = os.lstat(file)
    except FileNotFoundError:
        raise StateError(f"{file}: missing from saved state") from None
    except OSError as error:
        raise StateError(f"{file}: cannot read ({error.strerror})") from None
    if not stat.S_ISREG(info.st_mode):
        raise StateError(f"{file}: not a regular file (links and devices are refused)")
    return info
