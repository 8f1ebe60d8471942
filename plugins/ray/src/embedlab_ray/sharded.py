"""One index per shard (on Ray actors, or in this process); search fans out and merges the shards'
top-k exactly; the shards are saved as one state directory and loaded back locally or onto actors."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from embedlab.components import distribution_of
from embedlab.embeddings import Embeddings
from embedlab.errors import EmbedlabError, InvalidInputError, StateError
from embedlab.index.topk import merge_results
from embedlab.persistence import MANIFEST, load_state, save_state
from embedlab.protocols import Compressor, Filter, Index
from embedlab.ranking import SearchResult
from embedlab.shards import ChunkStore, concatenate

#: Manifest name of a sharded state; each shard is the part ``shard-00000``, ``shard-00001``, ...
SHARDED = "sharded"
SHARD_DIR = "shard-{:05d}"


class ShardActor:
    """Holds the index of one shard: a Ray actor class (see :func:`build_shards`), or a plain
    object when the shards live in this process."""

    def __init__(self, index: Index | None = None) -> None:
        self.index = index

    def build(self, index: Index, compressor: Compressor | None, vectors: Embeddings,
              attributes: Mapping[str, np.ndarray] | None) -> int:
        if compressor is not None:
            index.use_compressor(compressor)
        index.build(vectors, attributes)
        self.index = index
        return len(index)

    def search(self, queries: Embeddings, k: int, filter: Filter) -> tuple[np.ndarray, np.ndarray]:
        assert self.index is not None
        result = self.index.search(queries, k, filter=filter)
        return np.asarray(result.scores), np.asarray(result.indices)

    def memory_bytes(self) -> int:
        return 0 if self.index is None else int(self.index.memory_bytes)

    def identity(self) -> tuple[str, Any]:
        """The shard index's name and config."""
        assert self.index is not None
        return self.index.name, self.index.config

    def save(self, path: str) -> None:
        """The shard index's own ``save`` (checksummed, atomic) into ``path``."""
        assert self.index is not None
        self.index.save(path)

    def load(self, path: str, mmap: bool) -> int:
        """Load (and verify) the shard saved at ``path``; its number of documents."""
        from embedlab import load_component

        self.index = load_component(path, mmap=mmap)
        if getattr(self.index, "kind", None) != "index":
            raise StateError(f"{path}: a shard of a sharded index must be an index, not "
                             f"{getattr(self.index, 'kind', '?')}")
        return len(self.index)


def _slice_columns(attributes: Mapping[str, np.ndarray] | None, start: int, stop: int) -> dict[str, np.ndarray] | None:
    return None if attributes is None else {name: column[start:stop] for name, column in attributes.items()}


def _get(ray: Any, futures: list[Any]) -> list[Any]:
    """``ray.get(futures)``; an embedlab error raised on an actor (a corrupted shard's StateError)
    is raised here as itself."""
    try:
        return ray.get(futures)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        if isinstance(cause, EmbedlabError):
            raise cause from None
        raise


def build_shards(ray: Any, index: Index, chunks: ChunkStore, attributes: Mapping[str, np.ndarray] | None,
                 compressor: Compressor | None, shards: int, *, num_cpus: float) -> ShardedIndex:
    """Split ``chunks`` into ``shards`` contiguous runs of whole chunks and build a copy of the
    (empty) ``index`` on each, on its own actor. The driver reads one shard at a time."""
    per_shard = -(-chunks.n_chunks // shards)
    remote = ray.remote(num_cpus=num_cpus)(ShardActor)
    actors, offsets, pending = [], [], []
    for first in range(0, chunks.n_chunks, per_shard):
        last = min(first + per_shard, chunks.n_chunks)
        start, stop = chunks.bounds(first)[0], chunks.bounds(last - 1)[1]
        parts = [chunks.load_chunk(c, mmap=False) for c in range(first, last)]
        vectors = ray.put(parts[0] if len(parts) == 1 else concatenate(parts))
        del parts
        actor = remote.remote()
        pending.append(actor.build.remote(index, compressor, vectors, _slice_columns(attributes, start, stop)))
        actors.append(actor)
        offsets.append(start)
    sizes = _get(ray, pending)
    return ShardedIndex(actors, np.asarray(offsets + [chunks.n_items], dtype=np.int64), sizes,
                        name=index.name, config=index.config, ray=ray)


class _ShardPart:
    """Shard ``shard`` of ``owner`` as a part of :func:`embedlab.persistence.save_state`."""

    def __init__(self, owner: ShardedIndex, shard: int) -> None:
        self.owner, self.shard = owner, shard

    def save(self, path: Path) -> None:
        self.owner._call("save", [(str(path),)], shards=[self.shard])
        if not (Path(path) / MANIFEST).is_file():
            raise StateError(f"shard {self.shard} was saved by its Ray actor into {path}, which this process "
                             "cannot see: saving a sharded index from a multi-node cluster needs a directory "
                             "shared by the driver and every node")


class ShardedIndex:
    """Index stand-in over shards: ``search`` sends the queries to every shard and merges the
    top-k with :func:`embedlab.index.topk.merge_results` (higher score first, ties to the lower
    global position), so an exact index gives the same result as one unsharded index (when each
    shard starts on a multiple of its block size, the scores are bit-identical).

    The shards live on Ray actors (built by the ray executor, or :meth:`load` with ``ray``) or in
    this process (:meth:`from_indexes`, :meth:`load` without ``ray``). :meth:`save` writes one state
    directory whose manifest (name ``sharded``) records the shard boundaries and pins each shard's
    own state, ``shard-00000/`` ... (each written by its index's ``save``, checksummed)."""

    kind = "index"

    def __init__(self, shards: Sequence[Any], bounds: np.ndarray, sizes: Sequence[int], *, name: str,
                 config: Any, ray: Any = None) -> None:
        self._ray, self._actors, self.bounds = ray, list(shards), np.asarray(bounds, dtype=np.int64)
        self.name, self.config = name, config
        if [int(s) for s in sizes] != np.diff(self.bounds).tolist():
            raise RuntimeError(f"sharded index: shard sizes {list(sizes)} do not match the bounds "
                               f"{self.bounds.tolist()}")

    @classmethod
    def from_indexes(cls, indexes: Sequence[Index]) -> ShardedIndex:
        """Built indexes as the shards (in this process), in order: shard ``i`` holds the global
        positions after those of shards ``0..i-1``."""
        if not indexes:
            raise InvalidInputError("sharded index: no shards given")
        sizes = [len(index) for index in indexes]
        if min(sizes) == 0:
            raise InvalidInputError("sharded index: every shard needs at least one document")
        first = indexes[0]
        return cls([ShardActor(index) for index in indexes], np.concatenate([[0], np.cumsum(sizes)]), sizes,
                   name=first.name, config=first.config)

    def __len__(self) -> int:
        return int(self.bounds[-1])

    @property
    def shards(self) -> int:
        return len(self._actors)

    @property
    def on_ray(self) -> bool:
        """Whether the shards live on Ray actors."""
        return self._ray is not None

    def _call(self, method: str, args: Sequence[tuple], shards: Sequence[int] | None = None) -> list[Any]:
        """``method(*args[i])`` on each shard (all of them, or ``shards``), in parallel on Ray."""
        chosen = [self._actors[s] for s in (range(self.shards) if shards is None else shards)]
        if self._ray is None:
            return [getattr(actor, method)(*a) for actor, a in zip(chosen, args)]
        return _get(self._ray, [getattr(actor, method).remote(*a) for actor, a in zip(chosen, args)])

    @property
    def memory_bytes(self) -> int:
        return int(sum(self._call("memory_bytes", [()] * self.shards)))

    def _shard_filter(self, filter: Filter, shard: int) -> Filter:
        if filter is None or callable(filter) or isinstance(filter, Mapping):
            return filter  # resolved by each shard against its own attribute columns
        mask = np.asarray(filter)
        if mask.dtype != bool or mask.shape[-1] != len(self):
            raise InvalidInputError(f"sharded index: a mask filter needs {len(self)} booleans per query, "
                                    f"got shape {mask.shape}")
        return mask[..., self.bounds[shard]:self.bounds[shard + 1]]

    def search(self, queries: Embeddings, k: int, filter: Filter = None) -> SearchResult:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
            raise InvalidInputError(f"sharded index: k must be a positive integer, got {k!r}")
        shared = queries if self._ray is None else self._ray.put(queries)
        found = self._call("search", [(shared, int(k), self._shard_filter(filter, s)) for s in range(self.shards)])
        results = []
        for shard, (scores, positions) in enumerate(found):
            positions = np.where(positions >= 0, positions + self.bounds[shard], -1)
            results.append(SearchResult(scores, positions))
        return merge_results(results, int(k))

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        raise InvalidInputError("sharded index: built by the ray executor from chunks; build a new pipeline instead")

    add = build

    def save(self, path: str | Path) -> Path:
        """Write every shard (its index's own ``save``, by its actor when on Ray: the directory must
        then be visible to every node) and a manifest with the boundaries, atomically as a whole."""
        if not self._actors:
            raise InvalidInputError("sharded index: closed; nothing to save")
        distribution, version = distribution_of(self)
        identity = {"kind": self.kind, "name": SHARDED, "config": {}, "distribution": distribution,
                    "version": version}
        meta = {"index": self.name, "bounds": self.bounds.tolist(), "shards": self.shards}
        parts = {SHARD_DIR.format(shard): _ShardPart(self, shard) for shard in range(self.shards)}
        return save_state(path, self, meta=meta, parts=parts, identity=identity)

    @classmethod
    def load(cls, path: str | Path, *, ray: Any = None, num_cpus: float = 1.0, mmap: bool = False) -> ShardedIndex:
        """Load a state written by :meth:`save`: every shard in this process (``ray`` None) or each
        on a new Ray actor (``ray``: the initialised ``ray`` module; ``num_cpus`` per actor; the
        directory must be visible to every node). Every file is checked against its checksum (by
        the process that loads it), so a corrupted or truncated shard raises StateError."""
        state = load_state(path, kind=cls.kind, name=SHARDED)
        bounds = _read_bounds(state)
        names = [SHARD_DIR.format(shard) for shard in range(len(bounds) - 1)]
        if sorted(state.manifest.get("parts", {})) != names:
            raise state.error(f"expected the parts {names[0]} ... {names[-1]} for {len(names)} shards, found "
                              f"{sorted(state.manifest.get('parts', {}))[:4]}")
        paths = [(str(state.path / name), bool(mmap)) for name in names]
        if ray is None:
            actors: list[Any] = [ShardActor() for _ in names]
            sizes = [actor.load(*where) for actor, where in zip(actors, paths)]
        else:
            remote = ray.remote(num_cpus=num_cpus)(ShardActor)
            actors = [remote.remote() for _ in names]
            try:
                sizes = _get(ray, [actor.load.remote(*where) for actor, where in zip(actors, paths)])
            except BaseException:
                for actor in actors:
                    ray.kill(actor)
                raise
        if [int(s) for s in sizes] != np.diff(bounds).tolist():
            raise state.error(f"the shards hold {sizes} documents, the manifest's bounds say "
                              f"{np.diff(bounds).tolist()}")
        index = cls(actors, bounds, sizes, name="", config=None, ray=ray)
        index.name, index.config = index._call("identity", [()], shards=[0])[0]
        return index

    def close(self) -> None:
        if self._ray is not None:
            for actor in self._actors:
                self._ray.kill(actor)
        self._actors = []


def _read_bounds(state: Any) -> np.ndarray:
    values = state.value("bounds", list)
    if len(values) < 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in values) \
            or values[0] != 0 or any(b <= a for a, b in zip(values, values[1:])):
        raise state.error("meta.bounds must be increasing integers from 0, one more than the shards")
    return np.asarray(values, dtype=np.int64)
