"""Streamed, resumable encoding into checksummed chunks, and reading them back chunk by chunk.

A chunk store is a directory::

    job.json            {"format_version", "job", "n_items", "chunk_size", "kind"}
    chunk-000000/       an embedlab.persistence state directory (manifest + .npy, checksummed)
    chunk-000001/       ...

Chunk ``i`` holds the embeddings of items ``[i * chunk_size, (i + 1) * chunk_size)``. Each chunk is
written atomically as soon as it is encoded, so a killed run (Ctrl-C, ``kill -9``, out of memory)
resumes from the last finished chunk: :func:`encode_chunks` verifies the finished chunks'
checksums, skips them and encodes only the rest. Chunks are deterministic units (the same texts are
encoded in the same call), so a resumed run gives bit-identical embeddings. One writer at a time
holds ``job.lock`` (an ``flock``, released by the kernel when a writer dies); temporary directories
a dead writer left behind are removed by the next one.

Readers never hold more than one chunk file open: :meth:`ChunkStore.chunks` memory-maps one chunk
at a time, :meth:`ChunkStore.gather` fills one preallocated array (peak memory: the result plus one
chunk), :meth:`ChunkStore.take` reads selected rows.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import attrs
import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from embedlab import embeddings as emb
from embedlab.atomic import write_file_atomically
from embedlab.errors import InvalidInputError, StateError
from embedlab.persistence import SavedState, load_state, read_manifest, save_state

JOB_FILE = "job.json"
LOCK_FILE = "job.lock"
FORMAT_VERSION = 1
#: Default documents per chunk: a multiple of the transformers encoder's 2,048-text tokenisation
#: chunk, so chunked and one-call encodings batch the same texts together.
DEFAULT_CHUNK_SIZE = 16_384

Encode = Callable[[list[str]], emb.Embeddings]


def _positive(instance: object, attribute: attrs.Attribute, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


@attrs.frozen
class ChunkStore:
    """A directory of finished chunks of one encoding job (see the module docstring)."""

    root: Path = attrs.field(converter=Path)
    job: str
    n_items: int
    chunk_size: int = attrs.field(validator=_positive)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_items // self.chunk_size)

    def bounds(self, chunk: int) -> tuple[int, int]:
        """Item range ``[start, stop)`` of ``chunk``."""
        start = chunk * self.chunk_size
        return start, min(start + self.chunk_size, self.n_items)

    def chunk_path(self, chunk: int) -> Path:
        return self.root / f"chunk-{chunk:06d}"

    def __len__(self) -> int:
        return self.n_items

    # -- creation --------------------------------------------------------------------------

    @classmethod
    def open(cls, root: str | Path, job: str, n_items: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ChunkStore:
        """Open (or create) the store of ``job`` in ``root``; a directory holding another job's
        chunks raises :class:`StateError` instead of mixing them."""
        if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
            raise InvalidInputError(f"chunk store: nothing to encode ({n_items!r} items)")
        store = cls(root, job, n_items, chunk_size)
        file = store.root / JOB_FILE
        record = {"format_version": FORMAT_VERSION, "job": job, "n_items": n_items, "chunk_size": chunk_size}
        if file.is_file():
            found = _read_job(file)
            if {k: found.get(k) for k in record} != record:
                raise StateError(f"{store.root} holds the chunks of another encoding job ({found}); "
                                 f"expected {record}. Use another directory or delete this one.")
        else:
            write_file_atomically(file, json.dumps(record, indent=2))
        return store

    @classmethod
    def read(cls, root: str | Path) -> ChunkStore:
        """Open an existing store from its ``job.json``."""
        file = Path(root) / JOB_FILE
        if not file.is_file():
            raise StateError(f"{root}: not a chunk store (no {JOB_FILE})")
        record = _read_job(file)
        try:
            if not isinstance(record["job"], str):
                raise TypeError(f"job is {record['job']!r:.60}, not a string")
            return cls(root, record["job"], _count(record["n_items"]), _count(record["chunk_size"]))
        except (KeyError, TypeError, ValueError) as error:
            raise StateError(f"{file}: corrupted job record ({error!r:.200})") from None

    # -- state of the chunks ---------------------------------------------------------------

    def is_finished(self, chunk: int, *, verify: bool = True) -> bool:
        """Whether ``chunk`` was written completely (checksums verified unless ``verify=False``)."""
        path = self.chunk_path(chunk)
        if not path.is_dir():
            return False
        try:
            found = emb.count(read_embeddings(load_state(path, kind="embeddings", mmap=True, verify=verify)))
        except (StateError, OSError) as error:
            warnings.warn(f"chunk {path} is unusable ({error}); it will be encoded again", stacklevel=2)
            return False
        start, stop = self.bounds(chunk)
        return found == stop - start

    def finished(self, *, verify: bool = True) -> list[int]:
        """Indices of the chunks already written."""
        return [c for c in range(self.n_chunks) if self.is_finished(c, verify=verify)]

    @property
    def complete(self) -> bool:
        return all(self.chunk_path(c).is_dir() for c in range(self.n_chunks))

    def seconds(self) -> float:
        """Encoding seconds summed over the chunks (as measured when each was written)."""
        total = 0.0
        for chunk in range(self.n_chunks):
            value = _read_meta(self.chunk_path(chunk)).get("seconds", 0.0)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise StateError(f"{self.chunk_path(chunk)}: meta.seconds is {value!r:.60}, not a number")
            total += float(value)
        return total

    # -- reading ---------------------------------------------------------------------------

    def load_chunk(self, chunk: int, *, mmap: bool = True, verify: bool = False) -> emb.Embeddings:
        """Embeddings of one chunk (memory-mapped dense arrays by default)."""
        return read_embeddings(load_state(self.chunk_path(chunk), kind="embeddings", mmap=mmap, verify=verify))

    def chunks(self, *, mmap: bool = True) -> Iterator[tuple[int, emb.Embeddings]]:
        """``(first item position, embeddings)`` of every chunk in order, one open at a time."""
        self._require_complete()
        for chunk in range(self.n_chunks):
            yield self.bounds(chunk)[0], self.load_chunk(chunk, mmap=mmap)

    @property
    def kind(self) -> emb.EmbeddingKind:
        self._require_complete()
        path = self.chunk_path(0)
        kind = _read_meta(path).get("embedding_kind")
        if kind not in {k.value for k in emb.EmbeddingKind}:
            raise StateError(f"{path}: unknown embedding kind {kind!r:.60}")
        return emb.EmbeddingKind(kind)

    @property
    def dim(self) -> int:
        first = self.load_chunk(0)
        return int(first.shape[1]) if isinstance(first, np.ndarray) or sp.issparse(first) else int(first.dim)

    def gather(self) -> emb.Embeddings:
        """All embeddings in memory: dense ones fill one preallocated array chunk by chunk."""
        self._require_complete()
        if self.kind is emb.EmbeddingKind.DENSE:
            out = np.empty((self.n_items, self.dim), dtype=np.float32)
            for start, chunk in self.chunks():
                out[start:start + chunk.shape[0]] = chunk
            return out
        return concatenate([chunk for _, chunk in self.chunks(mmap=False)])

    def take(self, positions: np.ndarray, columns: slice | None = None,
             out: np.ndarray | None = None) -> emb.Embeddings:
        """Rows at sorted ``positions`` (for example a training sample), reading only their chunks,
        one at a time; dense rows go straight into one preallocated array (peak memory: the result
        plus one chunk's selected rows), ``out`` when given (dense only; it must have the result's
        shape). ``columns`` (dense only) keeps those columns of each row."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions[0] < 0 or positions[-1] >= self.n_items
                               or np.any(np.diff(positions) < 0)):
            raise InvalidInputError("chunk store: take() needs sorted positions inside the store")
        if not positions.size:
            raise InvalidInputError("chunk store: take() got no positions")
        owners = positions // self.chunk_size
        parts = []
        done = 0
        for chunk in np.unique(owners).tolist():
            local = positions[owners == chunk] - chunk * self.chunk_size
            data = self.load_chunk(chunk)
            if isinstance(data, np.ndarray):
                rows = data[local] if columns is None else data[local, columns]
                if out is None:
                    out = np.empty((positions.size, *rows.shape[1:]), dtype=rows.dtype)
                elif out.shape != (positions.size, *rows.shape[1:]):
                    raise InvalidInputError(f"chunk store: take(out=...) needs shape "
                                            f"{(positions.size, *rows.shape[1:])}, got {out.shape}")
                out[done:done + local.size] = rows
                done += local.size
            elif columns is not None or out is not None:
                raise InvalidInputError(f"chunk store: take(columns=..., out=...) needs dense vectors, not "
                                        f"{type(data).__name__}")
            else:
                parts.append(_take(data, local))
            del data  # unmap this chunk before the next is mapped
        return out if out is not None else concatenate(parts)

    def remove(self) -> None:
        """Delete the store (after its chunks were consolidated elsewhere)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def _require_complete(self) -> None:
        missing = [c for c in range(self.n_chunks) if not self.chunk_path(c).is_dir()]
        if missing:
            raise StateError(f"{self.root}: {len(missing)} of {self.n_chunks} chunks are not encoded yet "
                             f"(first missing: {missing[0]}); run encode_chunks to finish the job")


def read_embeddings(state: SavedState) -> emb.Embeddings:
    """The embeddings of a cache entry or chunk, every array checked (:class:`StateError` naming
    the file otherwise); dense memory-mapped arrays stay mapped."""
    kind = state.value("embedding_kind", str)
    if kind not in {k.value for k in emb.EmbeddingKind}:
        raise state.error(f"unknown embedding kind {kind!r}")
    return emb.from_arrays(kind, state.arrays, where=str(state.path))


def _read_meta(path: Path) -> dict:
    """``meta`` of a chunk's manifest, its structure checked (:func:`embedlab.persistence.read_manifest`)."""
    return read_manifest(path).get("meta", {})


def _read_job(file: Path) -> dict:
    """The job record ``file``: a JSON object, else :class:`StateError`."""
    try:
        record = json.loads(file.read_bytes().decode("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError, RecursionError) as error:
        raise StateError(f"{file}: corrupted job record ({str(error)[:200]})") from None
    if not isinstance(record, dict):
        raise StateError(f"{file}: corrupted job record (a JSON {type(record).__name__}, not an object)")
    return record


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a positive integer, got {value!r:.60}")
    return value


def _take(x: emb.Embeddings, rows: np.ndarray) -> emb.Embeddings:
    if sp.issparse(x):
        return x[rows]
    return x.take(rows) if isinstance(x, emb.MultiVectorEmbeddings) else emb.BinaryCodes(x.bits[rows], x.dim)


def concatenate(parts: Sequence[emb.Embeddings]) -> emb.Embeddings:
    """Rows of several containers of one kind, in order."""
    kind = emb.kind_of(parts[0])
    if kind is emb.EmbeddingKind.DENSE:
        return np.concatenate(parts)
    if kind is emb.EmbeddingKind.SPARSE:
        return sp.vstack(parts, format="csr")
    if kind is emb.EmbeddingKind.BINARY:
        return emb.BinaryCodes(np.concatenate([p.bits for p in parts]), parts[0].dim)
    offsets = [np.zeros(1, np.int64)]
    total = 0
    for part in parts:
        offsets.append(part.offsets[1:] + total)
        total += int(part.offsets[-1])
    return emb.MultiVectorEmbeddings(np.concatenate([p.vectors for p in parts]), np.concatenate(offsets))


@contextmanager
def _writer_lock(root: Path) -> Iterator[None]:
    """Hold ``root/job.lock`` exclusively; then remove temporary directories of dead writers."""
    with open(root / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            for stale in root.glob(".chunk-*.tmp-*"):
                shutil.rmtree(stale, ignore_errors=True)
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def encode_chunks(store: ChunkStore, texts: Sequence[str], encode: Encode, *, desc: str = "encode",
                  progress: bool = True) -> ChunkStore:
    """Encode every chunk of ``texts`` not finished yet with ``encode`` (one call per chunk) and
    write it atomically; returns ``store``, complete. Shows documents/s and the ETA."""
    if len(texts) != store.n_items:
        raise InvalidInputError(f"chunk store {store.root}: {len(texts)} texts for a job of "
                                f"{store.n_items} items")
    with _writer_lock(store.root):
        todo = [c for c in range(store.n_chunks) if not store.is_finished(c)]
        done_items = store.n_items - sum(stop - start for start, stop in map(store.bounds, todo))
        with tqdm(total=store.n_items, initial=done_items, desc=desc, unit="doc", unit_scale=True,
                  smoothing=0.1, disable=not progress or not todo) as bar:
            for chunk in todo:
                start, stop = store.bounds(chunk)
                began = time.perf_counter()
                encoded = encode(list(texts[start:stop]))
                seconds = time.perf_counter() - began
                if emb.count(encoded) != stop - start:
                    raise InvalidInputError(f"{desc}: the encoder returned {emb.count(encoded)} "
                                            f"embeddings for {stop - start} texts")
                write_chunk(store, chunk, encoded, seconds)
                bar.update(stop - start)
    return store


def write_chunk(store: ChunkStore, chunk: int, encoded: emb.Embeddings, seconds: float) -> None:
    """Persist one chunk atomically (also used by executors that encode chunks elsewhere)."""
    identity = {"kind": "embeddings", "name": f"{store.job}:{chunk}", "config": {},
                "distribution": "embedlab", "version": "chunk"}
    save_state(store.chunk_path(chunk), None, emb.to_arrays(encoded),
               meta={"embedding_kind": emb.kind_of(encoded).value, "seconds": seconds,
                     "start": store.bounds(chunk)[0]}, identity=identity)
