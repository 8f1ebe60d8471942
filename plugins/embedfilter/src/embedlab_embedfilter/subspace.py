"""The subspaces an embedding is projected on: a band of the right singular vectors of the
unembedding matrix (EmbedFilter), or the controls at the same dimension (PCA of the fit vectors, a
random orthonormal subspace).

EmbedFilter (``CentreChen/EmbFilter``, ``set_lm_embed``, read for the rules): thin SVD
``W_U = U S Vh``, rows of ``Vh`` sorted by descending singular value, ``k`` rows kept:

* ``edge`` (the paper's default): rows ``[s, s + k)``, ``s = (d - k) // 2`` unless ``offset`` is
  given: drop the top ``s`` directions (frequent-token directions) and the bottom ones;
* ``tail``: the top ``k`` (the largest singular values); ``head``: the bottom ``k``;
* ``mid``: the top ``k // 2`` and the bottom ``k - k // 2`` (the middle dropped);
* ``rand``: ``k`` random rows of ``Vh``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from embedlab_transformers.model_files import weight_tensor

from embedlab.errors import ConfigError
from embedlab.sampling import sample_positions

BANDS = ("edge", "tail", "head", "mid", "rand")
WORD_EMBEDDINGS = ("embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight",
                   "lm_head.weight", "cls.predictions.decoder.weight")


def unembedding_matrix(model_dir: Path) -> np.ndarray:
    """``(V, d)`` float32 unembedding matrix of a transformers model directory: its LM head or, for
    BERT-style encoders whose MLM decoder is tied to them, the word embeddings."""
    try:
        return weight_tensor(Path(model_dir), WORD_EMBEDDINGS)
    except ConfigError as error:
        raise ConfigError(f"embedfilter: {error}") from None


_BASES: dict[tuple[str, int, int], np.ndarray] = {}


def unembedding_basis(model_dir: Path) -> np.ndarray:
    """``Vh`` of the unembedding matrix of ``model_dir``, computed once per process and weights file
    (keyed by the directory and its weights' sizes and modification times)."""
    files = sorted(Path(model_dir).glob("*.safetensors"))
    key = (str(Path(model_dir).resolve()), sum(f.stat().st_size for f in files),
           max((f.stat().st_mtime_ns for f in files), default=0))
    if key not in _BASES:
        _BASES[key] = right_singular_vectors(unembedding_matrix(model_dir))
    return _BASES[key]


def right_singular_vectors(matrix: np.ndarray) -> np.ndarray:
    """``Vh`` ``(d, d)`` of the thin SVD, rows by descending singular value: the eigenvectors of the
    float64 Gram matrix ``W^T W = V S^2 V^T`` (``d x d``: far cheaper than the SVD of ``V x d``; the
    same right singular subspaces)."""
    x = np.asarray(matrix, dtype=np.float64)
    values, vectors = np.linalg.eigh(x.T @ x)
    return vectors[:, np.argsort(-values, kind="stable")].T


def band_rows(dim: int, k: int, band: str, offset: int | None = None, seed: int = 0) -> np.ndarray:
    """Indices of the rows of ``Vh`` kept by ``band`` (see the module docstring)."""
    if not 1 <= k <= dim:
        raise ConfigError(f"embedfilter: dims={k} must be in 1..{dim}")
    if band == "edge":
        start = (dim - k) // 2 if offset is None else offset
        if not 0 <= start <= dim - k:
            raise ConfigError(f"embedfilter: offset={offset} leaves fewer than dims={k} of {dim} directions")
        return np.arange(start, start + k)
    if band == "tail":
        return np.arange(k)
    if band == "head":
        return np.arange(dim - k, dim)
    if band == "mid":
        return np.concatenate([np.arange(k // 2), np.arange(dim - (k - k // 2), dim)])
    if band == "rand":
        return sample_positions(dim, k, seed)
    raise ConfigError(f"embedfilter: unknown band {band!r}; expected one of {', '.join(BANDS)}")


def pca_basis(vectors: np.ndarray, k: int) -> np.ndarray:
    """``(k, d)`` top principal directions of ``vectors`` (centred; float64 eigendecomposition)."""
    x = np.asarray(vectors, dtype=np.float64)
    centred = x - x.mean(0)
    values, vectors_ = np.linalg.eigh(centred.T @ centred)
    return vectors_[:, np.argsort(-values, kind="stable")[:k]].T


def random_basis(dim: int, k: int, seed: int) -> np.ndarray:
    """``(k, d)`` orthonormal rows spanning a uniformly random ``k``-dimensional subspace (QR of a Gaussian)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, k)))
    return (q * np.sign(np.diag(r))).T
