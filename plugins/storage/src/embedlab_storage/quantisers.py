"""Quantisers: how each (kept) dimension is stored, and how float queries score the stored codes.

Codes are plain numpy arrays that any index can store and ``np.save`` without pickle:

============  ==============  ===========================================================
quantiser     code dtype      value
============  ==============  ===========================================================
float32       float32         the value
float16       float16         IEEE half (round to nearest even; saturates at +-65504)
bfloat16      uint16          bit pattern of ``ml_dtypes.bfloat16``
float8_e4m3   uint8           bit pattern of ``ml_dtypes.float8_e4m3fn`` (saturates at +-448)
float8_e5m2   uint8           bit pattern of ``ml_dtypes.float8_e5m2`` (saturates at +-57344)
int8          int8            ``round((x - low) / scale) - 128`` with per-dimension calibration
binary        uint8 (packed)  ``x > threshold``, eight dimensions a byte (``numpy.packbits``)
============  ==============  ===========================================================

``score(q, codes)`` is the asymmetric inner product ``q . decode(codes)`` with ``q`` kept in
float32, computed without materialising the decoded block where the format allows: int8 folds the
per-dimension scale into the query (``q . (scale*c + offset) = (q*scale) . c + q . offset``),
binary folds threshold and spread the same way; casts dequantise a bounded block at a time.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Iterator, Mapping

import ml_dtypes
import numpy as np

from embedlab.errors import InvalidInputError, StateError

#: Code rows converted to float32 at once inside ``score`` (bounds the temporary memory).
SCORE_BLOCK = 16384
INT8_LEVELS = 255


def _blocks(n: int) -> Iterator[slice]:
    for start in range(0, n, SCORE_BLOCK):
        yield slice(start, min(start + SCORE_BLOCK, n))


class Quantiser:
    """Base class: stores ``dim`` values a vector as ``code_width`` items of ``code_dtype``."""

    name: ClassVar[str]
    code_dtype: ClassVar[np.dtype]
    #: Symmetric quantisers score by encoding the query too (``score_codes``), not asymmetrically.
    symmetric: bool = False
    #: Names of the fitted arrays (empty for the data-independent casts).
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dim: int) -> None:
        self.dim = dim

    def code_width(self) -> int:
        return self.dim

    @property
    def bytes_per_vector(self) -> int:
        return self.code_width() * np.dtype(self.code_dtype).itemsize

    def fit(self, values: np.ndarray) -> None:
        """Learn calibration from ``(n, dim)`` float32 values (nothing for the casts)."""

    def encode(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        """Float32 values of already checked codes."""
        raise NotImplementedError

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return self.dequantise(self.check(codes))

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``queries @ decode(codes).T``, dequantising at most :data:`SCORE_BLOCK` rows at once."""
        codes = self.check(codes)
        out = np.empty((queries.shape[0], codes.shape[0]), np.float32)
        for rows in _blocks(codes.shape[0]):
            np.matmul(queries, self.dequantise(codes[rows]).T, out=out[:, rows])
        return out

    def check(self, codes: object) -> np.ndarray:
        """``codes`` as a 2-d array of this quantiser's dtype and width, or InvalidInputError."""
        array = np.asarray(codes)
        expected = (self.code_width(),)
        if array.ndim != 2 or array.shape[1:] != expected or array.dtype != self.code_dtype:
            raise InvalidInputError(f"{self.name} codes: expected an (n, {expected[0]}) "
                                    f"{np.dtype(self.code_dtype).name} array, got shape {array.shape} "
                                    f"{array.dtype.name}; pass codes made by encode() of this fitted "
                                    "compressor")
        return array

    def state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.state_names}

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set the fitted arrays, checking that each has shape ``(dim,)``."""
        for name in self.state_names:
            array = np.asarray(arrays[name], dtype=np.float32)
            if array.shape != (self.dim,):
                raise StateError(f"{self.name} state: {name} has shape {array.shape}, expected "
                                 f"({self.dim},)")
            setattr(self, name, array)


class Float32(Quantiser):
    """No quantisation (the reduced values as float32)."""

    name = "float32"
    code_dtype = np.dtype(np.float32)

    def encode(self, values: np.ndarray) -> np.ndarray:
        return np.array(values, dtype=np.float32)

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        return codes

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return queries @ self.check(codes).T


class Cast(Quantiser):
    """A cast to a narrower float format with round-to-nearest-even, saturating at its largest
    finite value (float8_e4m3fn has no infinity: an unsaturated overflow would become NaN)."""

    float_dtype: ClassVar[type]

    def encode(self, values: np.ndarray) -> np.ndarray:
        largest = float(ml_dtypes.finfo(self.float_dtype).max)
        return np.clip(values, -largest, largest).astype(self.float_dtype).view(self.code_dtype)


class Float16(Cast):
    name = "float16"
    code_dtype = np.dtype(np.float16)
    float_dtype = np.float16

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float32)


class BFloat16(Cast):
    """bfloat16 is the upper half of a float32: decoding is a shift."""

    name = "bfloat16"
    code_dtype = np.dtype(np.uint16)
    float_dtype = ml_dtypes.bfloat16

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        return (codes.astype(np.uint32) << 16).view(np.float32)


class Float8(Cast):
    """A float8 format decoded through a 256-entry table."""

    code_dtype = np.dtype(np.uint8)

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.table = np.arange(256, dtype=np.uint8).view(self.float_dtype).astype(np.float32)

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        return self.table[codes]


class Float8E4M3(Float8):
    name = "float8_e4m3"
    float_dtype = ml_dtypes.float8_e4m3fn


class Float8E5M2(Float8):
    name = "float8_e5m2"
    float_dtype = ml_dtypes.float8_e5m2


class Int8(Quantiser):
    """Per-dimension affine int8: ``value = scale * code + offset``, ``offset = low + 128 * scale``,
    with ``[low, high]`` the dimension's min/max (``calibration="minmax"``) or its ``100 - p`` and
    ``p`` percentiles (``calibration="percentile"``) over the fit vectors; values outside are clipped."""

    name = "int8"
    code_dtype = np.dtype(np.int8)
    state_names = ("low", "scale", "offset")

    def __init__(self, dim: int, calibration: str = "minmax", percentile: float = 99.9) -> None:
        super().__init__(dim)
        self.calibration, self.percentile = calibration, percentile

    def fit(self, values: np.ndarray) -> None:
        if self.calibration == "minmax":
            low, high = values.min(axis=0), values.max(axis=0)
        else:
            low, high = np.percentile(values, [100 - self.percentile, self.percentile], axis=0)
        step = (high.astype(np.float64) - low) / INT8_LEVELS
        # A constant dimension decodes to its value whatever the step; 1 avoids dividing by 0.
        self.scale = np.where(step > 0, step, 1.0).astype(np.float32)
        self.low = low.astype(np.float32)
        self.offset = (self.low + 128 * self.scale.astype(np.float64)).astype(np.float32)

    def encode(self, values: np.ndarray) -> np.ndarray:
        levels = np.rint((values - self.low) / self.scale)
        return (np.clip(levels, 0, INT8_LEVELS) - 128).astype(np.int8)

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        return codes * self.scale + self.offset

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        codes = self.check(codes)
        scaled = queries * self.scale
        out = np.empty((queries.shape[0], codes.shape[0]), np.float32)
        for rows in _blocks(codes.shape[0]):
            np.matmul(scaled, codes[rows].astype(np.float32).T, out=out[:, rows])
        out += (queries @ self.offset)[:, None]
        return out


class Binary(Quantiser):
    """One bit a dimension, ``value > threshold``; decoded as ``threshold +- spread`` where
    ``spread`` is the dimension's mean absolute deviation from the threshold over the fit vectors.

    ``scoring="asymmetric"`` scores float queries against that reconstruction;
    ``scoring="hamming"`` binarises the query too and returns ``dim - 2 * hamming distance``
    (the inner product of the +-1 vectors).
    """

    name = "binary"
    code_dtype = np.dtype(np.uint8)
    state_names = ("threshold", "spread")

    def __init__(self, dim: int, threshold: str = "zero", scoring: str = "asymmetric") -> None:
        super().__init__(dim)
        self.threshold_rule = threshold
        self.symmetric = scoring == "hamming"

    def code_width(self) -> int:
        return (self.dim + 7) // 8

    def fit(self, values: np.ndarray) -> None:
        threshold = np.median(values, axis=0) if self.threshold_rule == "median" else np.zeros(self.dim)
        self.threshold = threshold.astype(np.float32)
        self.spread = np.mean(np.abs(values - self.threshold), axis=0).astype(np.float32)

    def encode(self, values: np.ndarray) -> np.ndarray:
        return np.packbits(values > self.threshold, axis=1)

    def bits(self, codes: np.ndarray) -> np.ndarray:
        """``(n, dim)`` float32 0/1 values of packed codes."""
        return np.unpackbits(codes, axis=1, count=self.dim).astype(np.float32)

    def dequantise(self, codes: np.ndarray) -> np.ndarray:
        return self.threshold + self.spread * (2 * self.bits(codes) - 1)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        # q . (t + s * (2b - 1)) = (2 q*s) . b + q . (t - s)
        codes = self.check(codes)
        weighted = 2 * queries * self.spread
        out = np.empty((queries.shape[0], codes.shape[0]), np.float32)
        for rows in _blocks(codes.shape[0]):
            np.matmul(weighted, self.bits(codes[rows]).T, out=out[:, rows])
        out += (queries @ (self.threshold - self.spread))[:, None]
        return out

    def score_codes(self, query_codes: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``dim - 2 * hamming(query_codes, codes)``: the +-1 inner product, by one matmul."""
        signs = 2 * self.bits(self.check(query_codes)) - 1
        codes = self.check(codes)
        out = np.empty((signs.shape[0], codes.shape[0]), np.float32)
        for rows in _blocks(codes.shape[0]):
            np.matmul(signs, (2 * self.bits(codes[rows]) - 1).T, out=out[:, rows])
        return out


QUANTISER_CLASSES: dict[str, Callable[..., Quantiser]] = {
    cls.name: cls for cls in (Float32, Float16, BFloat16, Float8E4M3, Float8E5M2, Int8, Binary)}
