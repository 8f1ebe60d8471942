"""Creating, training and tuning a FAISS index, with FAISS's errors translated into embedlab ones
that name the config key to change."""

from __future__ import annotations

import re

import faiss
import numpy as np

from embedlab.errors import ConfigError, InvalidInputError
from embedlab.sampling import sample_positions

METRICS = {"ip": faiss.METRIC_INNER_PRODUCT, "cosine": faiss.METRIC_INNER_PRODUCT, "l2": faiss.METRIC_L2}
#: Runtime parameters set through ``faiss.ParameterSpace`` (config key = FAISS parameter name).
RUNTIME_PARAMETERS = ("nprobe", "efSearch")
_CLUSTERS = re.compile(r"number of clusters \((\d+)\)")


def index_type(index: faiss.Index) -> str:
    """Class name of the concrete FAISS index, e.g. ``IndexIVFFlat``."""
    return type(faiss.downcast_index(index)).__name__


def create(factory: str, dim: int, metric: str) -> faiss.Index:
    """``faiss.index_factory(dim, factory, metric)``; a rejected string raises :class:`ConfigError`."""
    try:
        return faiss.index_factory(dim, factory, METRICS[metric])
    except RuntimeError as error:
        raise ConfigError(f"faiss: config key `factory`={factory!r} was rejected by FAISS for "
                          f"dimension {dim} and metric {metric!r} (see the FAISS wiki page 'The index "
                          f"factory' for the grammar). FAISS says: {error}") from None


def train(index: faiss.Index, vectors: np.ndarray, factory: str, train_size: int | None,
          seed: int) -> int:
    """Train ``index`` on a seeded sample of ``train_size`` vectors (all when None) if it needs
    training; returns the number of training vectors used (0 when none were needed)."""
    if index.is_trained:
        return 0
    n = vectors.shape[0]
    sample = vectors
    if train_size is not None and train_size < n:
        sample = vectors[sample_positions(n, train_size, seed)]
    try:
        index.train(sample)
    except RuntimeError as error:
        raise _training_error(error, factory, sample.shape[0], n, train_size) from None
    return int(sample.shape[0])


def _training_error(error: RuntimeError, factory: str, used: int, available: int,
                    train_size: int | None) -> Exception:
    found = _CLUSTERS.search(str(error))
    if found is None:
        return InvalidInputError(f"faiss: training factory {factory!r} on {used} vectors failed. "
                                 f"FAISS says: {error}")
    required = int(found.group(1))
    if train_size is not None and train_size < available and available >= required:
        return ConfigError(f"faiss: factory {factory!r} needs at least {required} training vectors "
                           f"but config key `train_size`={train_size} samples only {used} of the "
                           f"{available} given; raise `train_size` to >= {required}. FAISS says: {error}")
    return InvalidInputError(f"faiss: factory {factory!r} needs at least {required} training vectors, "
                             f"got {used}; build with more vectors (and `train_size` >= {required}) "
                             f"or choose a smaller factory (fewer IVF lists, fewer PQ bits). "
                             f"FAISS says: {error}")


def set_runtime_parameters(index: faiss.Index, factory: str, values: dict[str, int | None]) -> None:
    """Apply ``nprobe``/``efSearch`` through ``faiss.ParameterSpace`` (it reaches through
    pre-transforms, IVF and HNSW quantizers); one that does not apply raises :class:`ConfigError`."""
    space = faiss.ParameterSpace()
    for key, value in values.items():
        if value is None:
            continue
        try:
            space.set_index_parameter(index, key, value)
        except RuntimeError as error:
            raise ConfigError(f"faiss: config key `{key}`={value} does not apply to factory "
                              f"{factory!r} ({index_type(index)}); remove it. FAISS says: {error}") from None
