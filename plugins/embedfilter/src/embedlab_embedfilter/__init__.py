"""embedlab-embedfilter: EmbedFilter (*Your UnEmbedding Matrix is Secretly a Feature Lens*) as a
compressor: embeddings projected on a band of the right singular vectors of the model's
unembedding matrix (all-MiniLM-L6-v2: its tied word embeddings, 30522 x 384), plus the controls
that isolate the paper's contribution at the same dimension: the top principal components of the
corpus vectors and a random orthonormal subspace (``basis = "pca"`` / ``"random"``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import numpy as np
from embedlab_transformers.model_files import resolve_model_dir

import embedlab
from embedlab.embeddings import as_dense
from embedlab.errors import InvalidInputError, NotFittedError
from embedlab.persistence import load_state, save_state
from embedlab_embedfilter.subspace import BANDS, band_rows, pca_basis, random_basis, unembedding_basis

EMBEDLAB_API_VERSION = "1.1"
BASES = ("unembedding", "pca", "random")
_v = attrs.validators
_positive_int = [_v.instance_of(int), _v.ge(1)]


class EmbedFilter(embedlab.Component):
    """Project vectors on a ``dims``-dimensional subspace: ``z = normalise(P x)``, ``P`` ``(k, d)``
    with orthonormal rows; codes are float32 ``z``; ``decode(z) = P^T z``.

    ``basis = "unembedding"`` (EmbedFilter): rows ``band`` of ``Vh`` of the SVD of the unembedding
    matrix of ``model_path``; ``"pca"``: the top ``k`` principal directions of the fit vectors;
    ``"random"``: a random orthonormal subspace (``seed``)."""

    kind = "compressor"
    name = "embedfilter"

    @attrs.frozen(kw_only=True)
    class Config:
        """``dims`` kept (192: the paper's default ratio 2 on MiniLM's 384), ``basis``, ``band``
        (``edge``, ``tail``, ``head``, ``mid``, ``rand``; unembedding basis only), ``offset``
        (``edge``'s first kept direction; None: ``(d - k) // 2``), ``seed`` (``rand`` band, random
        basis), ``normalize`` (re-normalise the projected vectors: cosine in the subspace, as the
        paper normalises after pooling in the filtered space), ``model_path`` (None:
        all-MiniLM-L6-v2, whose vectors the filter is meant for)."""

        dims: int = attrs.field(default=192, validator=_positive_int)
        basis: str = attrs.field(default="unembedding", validator=_v.in_(BASES))
        band: str = attrs.field(default="edge", validator=_v.in_(BANDS))
        offset: int | None = attrs.field(default=None, validator=_v.optional([_v.instance_of(int), _v.ge(0)]))
        seed: int = attrs.field(default=0, validator=[_v.instance_of(int), _v.ge(0)])
        normalize: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        model_path: str | None = attrs.field(default=None, validator=_v.optional(_v.instance_of(str)))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._projection: np.ndarray | None = None

    @property
    def label(self) -> str:
        """Short name for tables and plots: ``edge:192``, ``pca:192``, ``random:192``..."""
        c = self.config
        return f"{c.band if c.basis == 'unembedding' else c.basis}:{c.dims}"

    def fit(self, vectors: np.ndarray) -> EmbedFilter:
        """Compute the projection (the unembedding and random bases use only the vectors' dimension)."""
        x = as_dense(vectors, name=f"{self.name} fit vectors")
        dim, c = x.shape[1], self.config
        if c.dims > dim:
            raise InvalidInputError(f"{self.name}: dims={c.dims} exceeds the vectors' {dim} dimensions")
        if c.basis == "unembedding":
            vh = unembedding_basis(resolve_model_dir(c.model_path))
            if vh.shape[1] != dim:
                raise InvalidInputError(f"{self.name}: the vectors have {dim} dimensions but the unembedding matrix "
                                        f"of {c.model_path or 'all-MiniLM-L6-v2'} has {vh.shape[1]}")
            projection = vh[band_rows(dim, c.dims, c.band, c.offset, c.seed)]
        elif c.basis == "pca":
            if len(x) < 2:
                raise InvalidInputError(f"{self.name}: a PCA basis needs at least 2 fit vectors, got {len(x)}")
            projection = pca_basis(x, c.dims)
        else:
            projection = random_basis(dim, c.dims, c.seed)
        self._projection = np.ascontiguousarray(projection, dtype=np.float32)
        return self

    @property
    def projection(self) -> np.ndarray:
        """``(dims, d)`` orthonormal rows."""
        if self._projection is None:
            raise NotFittedError(f"{self.name}: call fit(vectors) first")
        return self._projection

    @property
    def bytes_per_vector(self) -> float:
        return 4.0 * self.projection.shape[0]

    def _project(self, vectors: Any, name: str, allow_empty: bool = False) -> np.ndarray:
        p = self.projection
        z = as_dense(vectors, dim=p.shape[1], name=f"{self.name} {name}", allow_empty=allow_empty) @ p.T
        if self.config.normalize:
            norms = np.linalg.norm(z, axis=1, keepdims=True)
            z = z / np.where(norms > 0, norms, 1.0)
        return z.astype(np.float32, copy=False)

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """``(n, d)`` vectors to ``(n, dims)`` float32 codes."""
        return self._project(vectors, "vectors")

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Codes back to ``(n, d)``: ``P^T z`` (the projection of the vector on the subspace)."""
        z = as_dense(codes, dim=self.projection.shape[0], name=f"{self.name} codes", allow_empty=True)
        return (z @ self.projection).astype(np.float32, copy=False)

    def score(self, queries: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``q . decode(code)`` without decoding: ``(q P^T) z^T`` (the query projected, not re-normalised:
        the ranking per query is that of the cosine in the subspace)."""
        q = as_dense(queries, dim=self.projection.shape[1], name=f"{self.name} queries", allow_empty=True)
        z = as_dense(codes, dim=self.projection.shape[0], name=f"{self.name} codes", allow_empty=True)
        return (q @ self.projection.T) @ z.T

    def save(self, path: str | Path) -> None:
        save_state(path, self, arrays={"projection": self.projection}, meta={"input_dim": self.projection.shape[1]})

    @classmethod
    def load(cls, path: str | Path) -> EmbedFilter:
        """Read a compressor written by :meth:`save`; a projection that does not fit the saved
        configuration (shape, non-finite values) raises StateError."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        compressor = state.build(cls)
        input_dim = state.value("input_dim", int, minimum=1)
        projection = state.array("projection", kinds="f", shape=(compressor.config.dims, input_dim), finite=True)
        compressor._projection = np.ascontiguousarray(projection, dtype=np.float32)
        return compressor


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the compressor ``embedfilter``."""
    registry.add("compressor", "embedfilter", EmbedFilter)


__all__ = ["BANDS", "BASES", "EMBEDLAB_API_VERSION", "EmbedFilter", "embedlab_register"]
