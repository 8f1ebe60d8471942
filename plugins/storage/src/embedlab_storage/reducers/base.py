"""What every reducer provides: fit, transform to ``output_dim`` values, decode back, state arrays."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from embedlab.errors import ConfigError, StateError
from embedlab.sampling import sample_positions

#: Rows transformed at once by the reducers that build an (n, reference) kernel/similarity block.
ROW_BLOCK = 2048


def row_blocks(n: int, size: int = ROW_BLOCK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class Reducer:
    """Maps ``(n, input_dim)`` float32 vectors to ``(n, output_dim)`` and back.

    A reducer whose decoding is affine (``x = z @ decoder + bias``) exposes it as
    :attr:`linear_decoder`, so that a float query scores reduced codes as
    ``(q @ decoder.T) . z + q . bias`` without decoding them; the others decode a block at a time.
    """

    method: ClassVar[str]
    #: Whether ``fit`` learns from the data (then it needs ``output_dim + 1`` vectors at least).
    data_fitted: ClassVar[bool] = True
    def __init__(self, input_dim: int, output_dim: int, seed: int) -> None:
        self.input_dim, self.output_dim, self.seed = input_dim, output_dim, seed
        self.decoder = np.zeros((0, input_dim), np.float32)
        self.bias = np.zeros(input_dim, np.float32)

    def min_fit_vectors(self) -> int:
        """Fit vectors needed: ``output_dim + 1`` for a data-fitted reducer (centring the data
        removes one degree of freedom, so fewer span fewer than ``output_dim`` directions)."""
        return self.output_dim + 1 if self.data_fitted else 1

    def fit(self, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def linear_decoder(self) -> tuple[np.ndarray, np.ndarray] | None:
        return self.decoder, self.bias

    def inverse(self, reduced: np.ndarray) -> np.ndarray:
        """Approximate input vectors of reduced values."""
        return reduced @ self.decoder + self.bias

    def shapes(self) -> dict[str, tuple[int | str, ...]]:
        """Expected shape of each state array; a name stands for a size known after fitting only,
        equal wherever the name appears."""
        return {"decoder": (self.output_dim, self.input_dim), "bias": (self.input_dim,)}

    def state(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.shapes()}

    def restore(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Set the fitted arrays from saved state, checking their shapes."""
        sizes: dict[str, int] = {}
        for name, shape in self.shapes().items():
            array = np.asarray(arrays[name])
            ok = array.ndim == len(shape) and all(
                sizes.setdefault(e, a) == a if isinstance(e, str) else e == a
                for e, a in zip(shape, array.shape))
            if not ok:
                wanted = "(" + ", ".join(str(e) for e in shape) + ")"
                raise StateError(f"{self.method} state: {name} has shape {array.shape}, expected "
                                 f"{wanted}{' with ' + str(sizes) if sizes else ''}")
            setattr(self, name, array)
        self.after_restore()

    def after_restore(self) -> None:
        """Hook for derived values after :meth:`restore`."""


def fit_linear_preimage(reduced: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares affine map ``reduced -> vectors``: the decoder of a non-linear encoder."""
    z_mean = reduced.mean(axis=0, dtype=np.float64)
    x_mean = vectors.mean(axis=0, dtype=np.float64)
    decoder = np.linalg.lstsq(reduced - z_mean, vectors - x_mean, rcond=None)[0]
    return decoder.astype(np.float32), (x_mean - z_mean @ decoder).astype(np.float32)


def reference_sample(vectors: np.ndarray, size: int, seed: int) -> np.ndarray:
    """At most ``size`` rows of ``vectors``, drawn without replacement with ``seed``, in order."""
    if len(vectors) <= size:
        return vectors
    return vectors[sample_positions(len(vectors), size, seed)]


def normalise_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def sign_convention(vectors: np.ndarray) -> np.ndarray:
    """Flip each column so that its largest-magnitude entry is positive (deterministic signs)."""
    rows = np.argmax(np.abs(vectors), axis=0)
    return vectors * np.sign(vectors[rows, np.arange(vectors.shape[1])])


def import_optional(module: str, reducer: str, package: str, extra: str) -> Any:
    """Import an optional dependency of one reducer, or raise a ConfigError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ConfigError(f"the {reducer!r} reducer needs {package}, an optional dependency: "
                          f"pip install 'embedlab-storage[{extra}]' ({error})") from None
