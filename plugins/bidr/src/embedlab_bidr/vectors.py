"""The on-disk tier: float32 vectors in a ``.npy`` file, memory-mapped read-only, read row by row."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
import weakref
from pathlib import Path

import numpy as np

#: Rows copied at once when a file is extended by ``appended``.
COPY_BLOCK = 65536


class VectorFile:
    """A read-only ``np.memmap`` over ``path``; ``owned`` files (working copies written by
    :meth:`create` or :meth:`appended`) are deleted when released or garbage collected, files
    inside a saved state never are."""

    def __init__(self, path: Path, array: np.ndarray, *, owned: bool, temp_dir: Path | None = None) -> None:
        self.path, self.array, self.owned = path, array, owned
        self._cleanup = weakref.finalize(self, _remove, path if owned else None, temp_dir)

    @classmethod
    def open(cls, path: str | Path) -> VectorFile:
        """Map an existing ``.npy`` file (never deleted by this object)."""
        path = Path(path)
        return cls(path, np.load(path, mmap_mode="r", allow_pickle=False), owned=False)

    @classmethod
    def create(cls, vectors: np.ndarray, directory: str | Path | None) -> VectorFile:
        """Write ``vectors`` to a new file in ``directory`` (a fresh temporary directory when None)."""
        path, temp_dir = _new_path(directory)
        np.save(path, vectors, allow_pickle=False)
        return cls(path, np.load(path, mmap_mode="r", allow_pickle=False), owned=True, temp_dir=temp_dir)

    def appended(self, vectors: np.ndarray, directory: str | Path | None) -> VectorFile:
        """A new working file holding these rows then ``vectors``; this one is released."""
        path, temp_dir = _new_path(directory)
        n = len(self.array)
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n + len(vectors), self.dim))
        for start in range(0, n, COPY_BLOCK):
            stop = min(start + COPY_BLOCK, n)
            out[start:stop] = self.array[start:stop]
        out[n:] = vectors
        out.flush()
        del out
        self.release()
        return VectorFile(path, np.load(path, mmap_mode="r", allow_pickle=False), owned=True, temp_dir=temp_dir)

    def release(self) -> None:
        """Unmap, and delete the file when owned."""
        self.array = np.zeros((0, self.dim), np.float32)
        self._cleanup()

    @property
    def dim(self) -> int:
        return int(self.array.shape[1])

    def __len__(self) -> int:
        return int(self.array.shape[0])

    @property
    def disk_bytes(self) -> int:
        """Size of the file (header included)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def rows(self, positions: np.ndarray) -> np.ndarray:
        """The vectors at ascending ``positions``: only those rows are read from the mapping."""
        return np.asarray(self.array[positions], dtype=np.float32)


def _new_path(directory: str | Path | None) -> tuple[Path, Path | None]:
    """A fresh file name in ``directory``, or in a new temporary directory (also returned)."""
    if directory is None:
        temp_dir = Path(tempfile.mkdtemp(prefix="embedlab-bidr-"))
        return temp_dir / "vectors.npy", temp_dir
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"bidr-vectors-{uuid.uuid4().hex}.npy", None


def _remove(path: Path | None, temp_dir: Path | None) -> None:
    if path is not None and path.exists():
        os.remove(path)
    if temp_dir is not None:
        shutil.rmtree(temp_dir, ignore_errors=True)
