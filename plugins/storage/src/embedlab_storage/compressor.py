"""The ``storage`` compressor: an optional reducer followed by a quantiser, named by a spec string."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np

import embedlab
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError, StateError
from embedlab.persistence import load_state, save_state
from embedlab_storage.quantisers import QUANTISER_CLASSES, Quantiser
from embedlab_storage.reducers import KERNELS, Reducer, make_reducer
from embedlab_storage.spec import StorageSpec, canonical_spec, parse_spec

_v = attrs.validators
#: Codes decoded at once when scoring through a non-linear decoder (the autoencoder).
DECODE_BLOCK = 8192
#: Largest input dimension a saved state may declare (checked before any array is allocated).
MAX_INPUT_DIM = 1 << 20
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))


def _as_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _quantiser(name: str, dim: int, config: Any) -> Quantiser:
    if name == "int8":
        return QUANTISER_CLASSES[name](dim, calibration=config.int8_range,
                                       percentile=config.int8_percentile)
    if name == "binary":
        return QUANTISER_CLASSES[name](dim, threshold=config.binary_threshold,
                                       scoring=config.binary_scoring)
    return QUANTISER_CLASSES[name](dim)


@attrs.define
class _Fitted:
    input_dim: int
    reducer: Reducer | None
    quantiser: Quantiser


class StorageCompressor(embedlab.Component):
    """Reduce (PCA, kernel PCA, random projections, autoencoder, UMAP) then quantise (float16,
    bfloat16, float8, int8, binary) document vectors; float queries score the codes directly.

    >>> compressor = StorageCompressor(spec="pca:0.5+float8_e4m3").fit(vectors)   # doctest: +SKIP
    >>> compressor.bytes_per_vector                # 384-d input: 192 one-byte values  # doctest: +SKIP
    192.0
    """

    kind = "compressor"
    name = "storage"

    @attrs.frozen
    class Config:
        spec: str = attrs.field(default="float8_e4m3", converter=canonical_spec)
        seed: int = attrs.field(default=0, validator=[_int, _v.ge(0)])
        int8_range: str = attrs.field(default="minmax", validator=_v.in_(("minmax", "percentile")))
        int8_percentile: float = attrs.field(default=99.9, validator=[_number, _v.gt(50), _v.le(100)])
        binary_threshold: str = attrs.field(default="zero", validator=_v.in_(("zero", "median")))
        binary_scoring: str = attrs.field(default="asymmetric", validator=_v.in_(("asymmetric", "hamming")))
        reference_size: int = attrs.field(default=4000, validator=[_int, _v.ge(2)])
        kpca_kernel: str = attrs.field(default="rbf", validator=_v.in_(KERNELS))
        kpca_gamma: float | None = attrs.field(default=None, validator=_v.optional([_number, _v.gt(0)]))
        umap_neighbors: int = attrs.field(default=15, validator=[_int, _v.ge(2)])
        umap_min_dist: float = attrs.field(default=0.1, validator=[_number, _v.ge(0)])
        ae_hidden: tuple[int, ...] = attrs.field(
            default=(512, 256), converter=_as_tuple,
            validator=_v.deep_iterable(_v.and_(_int, _v.ge(1)), _v.instance_of(tuple)))
        ae_epochs: int = attrs.field(default=10, validator=[_int, _v.ge(1)])
        ae_lr: float = attrs.field(default=1e-3, validator=[_number, _v.gt(0)])
        ae_batch_size: int = attrs.field(default=64, validator=[_int, _v.ge(1)])

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._fitted: _Fitted | None = None

    @property
    def spec(self) -> StorageSpec:
        """The parsed spec (reducer and quantiser)."""
        return parse_spec(self.config.spec)

    def fit(self, vectors: np.ndarray) -> StorageCompressor:
        """Fit the reducer, then calibrate the quantiser on the reduced fit vectors. An
        interrupted fit (Ctrl-C) leaves the compressor as it was."""
        x = as_dense(vectors, name=f"{self.name} {self.config.spec} fit vectors")
        dim = x.shape[1]
        reducer, quantiser = self._parts(dim)
        if reducer is not None:
            needed = reducer.min_fit_vectors()
            if len(x) < needed:
                raise InvalidInputError(
                    f"{self.name} {self.config.spec}: {reducer.method} keeps {reducer.output_dim} "
                    f"of {dim} dimensions and needs at least {needed} fit vectors, got {len(x)}; "
                    "fit on more vectors or lower the fraction")
            reducer.fit(x)
            x = reducer.transform(x)
        quantiser.fit(x)
        self._fitted = _Fitted(dim, reducer, quantiser)
        return self

    def _parts(self, input_dim: int) -> tuple[Reducer | None, Quantiser]:
        """Unfitted reducer (None without one) and quantiser of the spec for this input dimension."""
        spec = self.spec
        if spec.reducer is None:
            return None, _quantiser(spec.quantiser, input_dim, self.config)
        reducer = make_reducer(spec.reducer, input_dim, self.config.seed, self.config)
        return reducer, _quantiser(spec.quantiser, reducer.output_dim, self.config)

    def _state(self) -> _Fitted:
        if self._fitted is None:
            raise NotFittedError(f"{self.name} {self.config.spec}: call fit(vectors) first")
        return self._fitted

    @property
    def bytes_per_vector(self) -> float:
        """Bytes of one code row (exact: ``codes.nbytes / len(codes)``)."""
        return float(self._state().quantiser.bytes_per_vector)

    def reduce(self, vectors: np.ndarray) -> np.ndarray:
        """Float32 vectors after the reducer, before quantisation."""
        state = self._state()
        x = as_dense(vectors, dim=state.input_dim, name=f"{self.name} {self.config.spec} vectors")
        return x if state.reducer is None else state.reducer.transform(x)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, d)`` vectors (any float dtype, any layout) to ``(n, width)`` codes."""
        return self._state().quantiser.encode(self.reduce(vectors))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes back to ``(n, d)`` float32 vectors."""
        state = self._state()
        values = state.quantiser.decode(codes)
        return values if state.reducer is None else state.reducer.inverse(values).astype(np.float32)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``(n_queries, n_codes)`` scores ``q . decode(code)`` with float32 queries, without
        decoding the codes (a bounded block at a time for the autoencoder). With
        ``binary_scoring="hamming"`` the queries are encoded too: ``k - 2 * Hamming distance``."""
        state = self._state()
        q = as_dense(queries, dim=state.input_dim, name=f"{self.name} {self.config.spec} queries",
                     allow_empty=True)
        quantiser, reducer = state.quantiser, state.reducer
        if quantiser.symmetric:
            return quantiser.score_codes(self.encode(q), codes)
        if reducer is None:
            return quantiser.score(q, codes)
        linear = reducer.linear_decoder
        if linear is not None:
            decoder, bias = linear
            return quantiser.score(q @ decoder.T, codes) + (q @ bias)[:, None]
        codes = quantiser.check(codes)
        out = np.empty((len(q), len(codes)), np.float32)
        for start in range(0, len(codes), DECODE_BLOCK):
            block = slice(start, start + DECODE_BLOCK)
            np.matmul(q, self.decode(codes[block]).T, out=out[:, block])
        return out

    def check_codes(self, codes: np.ndarray) -> np.ndarray:
        """``codes`` of this compressor's dtype and width, or InvalidInputError."""
        return self._state().quantiser.check(codes)

    def save(self, path: str | Path) -> None:
        """Write the config and every fitted array (``reducer.*``, ``quantiser.*``) as .npy."""
        state = self._state()
        arrays = {f"quantiser.{k}": v for k, v in state.quantiser.state().items()}
        if state.reducer is not None:
            arrays.update({f"reducer.{k}": v for k, v in state.reducer.state().items()})
        save_state(path, self, arrays=arrays, meta={"input_dim": state.input_dim,
                                                    "bytes_per_vector": self.bytes_per_vector})

    @classmethod
    def load(cls, path: str | Path, *, spec: str | None = None) -> StorageCompressor:
        """Read a compressor written by :meth:`save`. With ``spec``, also check that the state was
        saved by that spec. A state of another component or spec raises StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        compressor = state.build(cls)
        if spec is not None and canonical_spec(spec) != compressor.config.spec:
            raise StateError(f"{path}: state saved by storage spec {compressor.config.spec!r}, "
                             f"expected {canonical_spec(spec)!r}")
        input_dim = state.value("input_dim", int, minimum=1, maximum=MAX_INPUT_DIM)
        reducer, quantiser = compressor._parts(input_dim)
        expected = {f"quantiser.{n}" for n in quantiser.state_names}
        if reducer is not None:
            expected |= {f"reducer.{n}" for n in reducer.shapes()}
        if set(state.arrays) != expected:
            raise StateError(f"{path}: saved arrays {sorted(state.arrays)} do not match storage spec "
                             f"{compressor.config.spec!r}, which needs {sorted(expected)}")
        arrays = {name: state.array(name, kinds="biuf", finite=True) for name in expected}
        quantiser.restore({n: arrays[f"quantiser.{n}"] for n in quantiser.state_names})
        if reducer is not None:
            reducer.restore({n: arrays[f"reducer.{n}"] for n in reducer.shapes()})
        compressor._fitted = _Fitted(input_dim, reducer, quantiser)
        return compressor
