"""Deterministic dense test encoders (a text's vector from its hash, optionally shifted and
rotated) and a private embedding cache."""

from __future__ import annotations

import hashlib

import attrs
import numpy as np
import pytest

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind


@pytest.fixture(autouse=True, scope="session")
def private_cache(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(tmp_path_factory.mktemp("embedlab-cache")))
        yield


def text_vector(text: str, dim: int) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    vector = np.random.default_rng(seed).standard_normal(dim)
    return vector / np.linalg.norm(vector)


class Drifted(Component):
    """``R (v(text)) + shift``: ``v`` a unit hash vector, ``R`` a seeded rotation mixing ``rotate``
    of the way towards a random orthogonal matrix (0: identity), ``shift`` a seeded offset of norm
    ``shift`` on queries only (documents are encoded with ``document_shift``)."""

    kind = "encoder"
    name = "drifted"

    @attrs.frozen
    class Config:
        dim: int = 16
        shift: float = 0.0
        document_shift: float = 0.0
        rotate: float = 0.0
        seed: int = 0

    @property
    def output_kind(self) -> EmbeddingKind:
        return EmbeddingKind.DENSE

    @property
    def dim(self) -> int:
        return self.config.dim

    def _matrix(self) -> np.ndarray:
        rng = np.random.default_rng(self.config.seed)
        q, _ = np.linalg.qr(rng.standard_normal((self.config.dim, self.config.dim)))
        return (1 - self.config.rotate) * np.eye(self.config.dim) + self.config.rotate * q

    def _offset(self, norm: float) -> np.ndarray:
        direction = np.random.default_rng(self.config.seed + 1).standard_normal(self.config.dim)
        return norm * direction / np.linalg.norm(direction)

    def _encode(self, texts, norm: float) -> np.ndarray:
        base = np.stack([text_vector(t, self.config.dim) for t in texts]) if texts else np.zeros((0, self.config.dim))
        return (base @ self._matrix().T + self._offset(norm)).astype(np.float32)

    def encode_queries(self, texts):
        return self._encode(list(texts), self.config.shift)

    def encode_documents(self, texts):
        return self._encode(list(texts), self.config.document_shift)


@pytest.fixture
def drifted() -> type[Drifted]:
    """The :class:`Drifted` test encoder (a fixture: test modules of several plugins cannot import their conftest)."""
    return Drifted
