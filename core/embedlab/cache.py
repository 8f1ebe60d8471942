"""On-disk embedding cache keyed by encoder fingerprint and text content hash.

A second identical run does no encoding. A corrupted entry is recomputed with a warning, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import attrs

from embedlab import embeddings as emb
from embedlab.components import fingerprint
from embedlab.errors import StateError
from embedlab.persistence import load_state, save_state
from embedlab.shards import DEFAULT_CHUNK_SIZE, ChunkStore

CACHE_ENV = "EMBEDLAB_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$EMBEDLAB_CACHE_DIR``, else ``~/.cache/embedlab``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "embedlab")


def texts_hash(texts: Sequence[str]) -> str:
    """sha256 over a sequence of texts (length-prefixed, so boundaries count)."""
    digest = hashlib.sha256()
    for text in texts:
        encoded = text.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "little"))
        digest.update(encoded)
    return digest.hexdigest()


@attrs.frozen
class CachedEmbeddings:
    """Embeddings with the seconds their (original) computation took and whether it was a hit."""

    embeddings: emb.Embeddings
    seconds: float
    hit: bool


@attrs.define
class EmbeddingCache:
    """Directory of saved embeddings, one state directory per key."""

    root: Path = attrs.field(converter=Path, factory=lambda: default_cache_dir() / "embeddings")

    def key(self, encoder: object, role: str, content_hash: str, context: str = "") -> str:
        """Cache key: encoder fingerprint, role (queries/documents), content and fit context."""
        parts = f"{fingerprint(encoder)}|{role}|{content_hash}|{context}"
        return hashlib.sha256(parts.encode()).hexdigest()

    def get_or_compute(self, key: str, compute: Callable[[], emb.Embeddings]) -> CachedEmbeddings:
        """Return the cached embeddings for ``key``, computing and storing them on a miss."""
        path = self.root / key[:2] / key
        if path.exists():
            try:
                state = load_state(path, kind="embeddings")
                stored = emb.from_arrays(state.meta["embedding_kind"], state.arrays)
                return CachedEmbeddings(stored, float(state.meta["seconds"]), True)
            except (StateError, KeyError, ValueError) as error:
                warnings.warn(f"embedding cache entry {path} is unusable ({error}); recomputing",
                              stacklevel=2)
        start = time.perf_counter()
        computed = compute()
        seconds = time.perf_counter() - start
        identity = {"kind": "embeddings", "name": key, "config": {}, "distribution": "embedlab",
                    "version": "cache"}
        save_state(path, None, emb.to_arrays(computed),
                   meta={"embedding_kind": emb.kind_of(computed).value, "seconds": seconds},
                   identity=identity)
        return CachedEmbeddings(computed, seconds, False)

    def chunk_store(self, key: str, n_items: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ChunkStore:
        """The chunked entry of ``key`` (see :mod:`embedlab.shards`), created when absent."""
        return ChunkStore.open(self.root / key[:2] / f"{key}.chunks", key, n_items, chunk_size)
