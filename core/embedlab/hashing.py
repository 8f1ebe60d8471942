"""The ``hashing`` encoder: signed feature hashing of lowercased words into a dense vector.

No model and no fitting: every process maps the same text to the same vector (blake2b, not
Python's salted ``hash``), which makes it the encoder of choice for tests that run components in
other processes (executors) and a floor that any learned encoder should beat.
"""

from __future__ import annotations

import hashlib
import re
from typing import Sequence

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.embeddings import EmbeddingKind
from embedlab.texts import check_texts

_WORD = re.compile(r"\w+")


class HashingEncoder(Component):
    """Bag of words hashed into ``dim`` signed buckets, L2-normalised (all-zero for texts
    without words).

    >>> HashingEncoder(dim=8).encode_documents(["a b", "b a"]).tolist()[0] == \\
    ...     HashingEncoder(dim=8).encode_documents(["b a"]).tolist()[0]
    True
    """

    kind = "encoder"
    name = "hashing"
    output_kind = EmbeddingKind.DENSE

    @attrs.frozen
    class Config:
        """``dim``: output dimension; ``seed``: salt of the hash."""

        dim: int = attrs.field(default=256, validator=[attrs.validators.instance_of(int), attrs.validators.gt(0)])
        seed: int = attrs.field(default=0, validator=attrs.validators.instance_of(int))

    @property
    def dim(self) -> int:
        return self.config.dim

    def _bucket(self, word: str) -> tuple[int, float]:
        digest = hashlib.blake2b(word.encode("utf-8", "surrogatepass"), digest_size=8,
                                 salt=self.config.seed.to_bytes(8, "little", signed=True)).digest()
        value = int.from_bytes(digest, "little")
        return value % self.config.dim, 1.0 if value >> 63 else -1.0

    def _encode(self, texts: Sequence[str], what: str) -> np.ndarray:
        items = check_texts(texts, f"hashing {what}")
        out = np.zeros((len(items), self.config.dim), np.float32)
        for row, text in enumerate(items):
            for word in _WORD.findall(text.lower()):
                column, sign = self._bucket(word)
                out[row, column] += sign
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1).astype(np.float32)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "queries")

    def encode_documents(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode(texts, "documents")
