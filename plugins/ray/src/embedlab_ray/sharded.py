"""One index per shard on Ray actors; search fans out and merges the shards' top-k exactly."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from embedlab.embeddings import Embeddings
from embedlab.errors import InvalidInputError
from embedlab.index.topk import merge_results
from embedlab.protocols import Compressor, Filter, Index
from embedlab.ranking import SearchResult
from embedlab.shards import ChunkStore, concatenate


class ShardActor:
    """Holds the index of one shard (a Ray actor class; see :func:`build_shards`)."""

    def __init__(self) -> None:
        self.index: Index | None = None

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


def _slice_columns(attributes: Mapping[str, np.ndarray] | None, start: int, stop: int) -> dict[str, np.ndarray] | None:
    return None if attributes is None else {name: column[start:stop] for name, column in attributes.items()}


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
    sizes = ray.get(pending)
    return ShardedIndex(ray, index, actors, np.asarray(offsets + [chunks.n_items], dtype=np.int64), sizes)


class ShardedIndex:
    """Index stand-in over shards on Ray actors: ``search`` sends the queries to every shard and
    merges the top-k with :func:`embedlab.index.topk.merge_results` (higher score first, ties to
    the lower global position), so an exact index gives the same result as one unsharded index
    (when each shard starts on a multiple of its block size, the scores are bit-identical)."""

    def __init__(self, ray: Any, template: Index, actors: list[Any], bounds: np.ndarray, sizes: list[int]) -> None:
        self._ray, self._actors, self.bounds = ray, actors, bounds
        self.name, self.config, self.kind = template.name, template.config, "index"
        if [int(s) for s in sizes] != np.diff(bounds).tolist():
            raise RuntimeError(f"ray executor: shard sizes {sizes} do not match the chunks {np.diff(bounds)}")

    def __len__(self) -> int:
        return int(self.bounds[-1])

    @property
    def shards(self) -> int:
        return len(self._actors)

    @property
    def memory_bytes(self) -> int:
        return int(sum(self._ray.get([a.memory_bytes.remote() for a in self._actors])))

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
        query_ref = self._ray.put(queries)
        futures = [actor.search.remote(query_ref, int(k), self._shard_filter(filter, shard))
                   for shard, actor in enumerate(self._actors)]
        results = []
        for shard, (scores, positions) in enumerate(self._ray.get(futures)):
            positions = np.where(positions >= 0, positions + self.bounds[shard], -1)
            results.append(SearchResult(scores, positions))
        return merge_results(results, int(k))

    def build(self, embeddings: Embeddings, attributes: Mapping[str, np.ndarray] | None = None) -> None:
        raise InvalidInputError("sharded index: built by the ray executor from chunks; build a new pipeline instead")

    add = build

    def save(self, path: Any) -> None:
        raise InvalidInputError("sharded index: save each shard's index from a local build instead "
                                "(its shards live on Ray actors)")

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
