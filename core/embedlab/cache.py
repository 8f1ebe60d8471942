"""On-disk embedding cache keyed by encoder fingerprint and text content hash.

A second identical run does no encoding. A corrupted entry is recomputed with a warning, never fatal.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Callable, Sequence

import attrs

from embedlab import embeddings as emb
from embedlab.components import fingerprint
from embedlab.errors import StateError
from embedlab.persistence import load_state, save_state
from embedlab.shards import DEFAULT_CHUNK_SIZE, ChunkStore, read_embeddings

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
    """Directory of saved embeddings, one state directory per key.

    The cache is optional and self-healing: an unusable entry (damaged, forged, half-written by an
    older version, a file in its place) is recomputed and replaced with a warning; when an entry
    cannot be written (full disk, read-only or unwritable cache) the run carries on uncached with a
    warning. Processes filling the same entry at once all succeed (the last one published wins;
    entries of the same key hold the same embeddings).
    """

    root: Path = attrs.field(converter=Path, factory=lambda: default_cache_dir() / "embeddings")

    def key(self, encoder: object, role: str, content_hash: str, context: str = "") -> str:
        """Cache key: encoder fingerprint, role (queries/documents), content and fit context."""
        parts = f"{fingerprint(encoder)}|{role}|{content_hash}|{context}"
        return hashlib.sha256(parts.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """The entry directory of ``key``."""
        return self.root / key[:2] / key

    def get_or_compute(self, key: str, compute: Callable[[], emb.Embeddings]) -> CachedEmbeddings:
        """Return the cached embeddings for ``key``, computing and storing them on a miss."""
        path = self.path(key)
        cached = self._read(path)
        if cached is not None:
            return cached
        start = time.perf_counter()
        computed = compute()
        seconds = time.perf_counter() - start
        self._write(path, key, computed, seconds)
        return CachedEmbeddings(computed, seconds, False)

    @staticmethod
    def _read(path: Path) -> CachedEmbeddings | None:
        if not os.path.lexists(path):
            return None
        try:
            state = load_state(path, kind="embeddings")
            stored = read_embeddings(state)
            return CachedEmbeddings(stored, float(state.value("seconds", (int, float), minimum=0)), True)
        except (StateError, OSError) as error:
            warnings.warn(f"embedding cache entry {path} is unusable ({error}); recomputing", stacklevel=4)
            return None

    @staticmethod
    def _write(path: Path, key: str, computed: emb.Embeddings, seconds: float) -> None:
        identity = {"kind": "embeddings", "name": key, "config": {}, "distribution": "embedlab",
                    "version": "cache"}
        try:
            if path.is_symlink() or path.is_file():  # a file in the entry's place: broken, replace it
                os.unlink(path)
        except OSError:
            pass  # another process replaced it first; save_state reports what remains
        try:
            save_state(path, None, emb.to_arrays(computed), overwrite=True, identity=identity,
                       meta={"embedding_kind": emb.kind_of(computed).value, "seconds": seconds})
        except StateError as error:
            warnings.warn(f"embedding cache: cannot store {path} ({error}); carrying on uncached",
                          stacklevel=4)

    def chunk_store(self, key: str, n_items: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ChunkStore:
        """The chunked entry of ``key`` (see :mod:`embedlab.shards`), created when absent."""
        root = self.root / key[:2] / f"{key}.chunks"
        try:
            return ChunkStore.open(root, key, n_items, chunk_size)
        except StateError as error:  # a corrupted job record: encode the entry again
            warnings.warn(f"embedding cache entry {root} is unusable ({error}); encoding it again", stacklevel=2)
            shutil.rmtree(root, ignore_errors=True)
            if root.exists() or root.is_symlink():
                root.unlink()
            return ChunkStore.open(root, key, n_items, chunk_size)
