"""The ``ray`` executor: chunks encoded by a Ray Data actor pool, one index per shard on Ray actors."""

from __future__ import annotations

import io
import time
import warnings
from typing import Any, Mapping, Sequence

import attrs
import numpy as np
from tqdm.auto import tqdm

from embedlab import embeddings as emb
from embedlab.components import Component
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.protocols import Compressor, Encoder, Index
from embedlab.shards import ChunkStore, write_chunk
from embedlab_ray.sharded import ShardedIndex, build_shards


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:  # pragma: no cover - the plugin depends on ray
        raise ConfigError("executor 'ray' needs Ray: pip install 'embedlab-ray'") from None
    return ray


def _optional_positive(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{attribute.name} must be a positive integer or None, got {value!r}")


def _non_negative(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{attribute.name} must be a number >= 0, got {value!r}")


def to_payload(encoded: emb.Embeddings) -> dict[str, Any]:
    """Embeddings as ``.npy`` bytes per array (no pickle), for a Ray Data row."""
    row: dict[str, Any] = {"kind": emb.kind_of(encoded).value}
    for name, array in emb.to_arrays(encoded).items():
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        row[f"npy:{name}"] = buffer.getvalue()
    return row


def from_payload(row: Mapping[str, Any]) -> emb.Embeddings:
    """Inverse of :func:`to_payload`."""
    arrays = {key[4:]: np.load(io.BytesIO(bytes(value)), allow_pickle=False)
              for key, value in row.items() if key.startswith("npy:")}
    return emb.from_arrays(str(row["kind"]), arrays)


def check_gpu_encoder(encoder: Encoder, gpus_per_actor: float) -> None:
    """GPU actors need an encoder that can use the GPU: one with a ``device`` setting other than
    ``"cpu"`` (the transformers encoders' ``"cuda"`` or ``"auto"``). ``device="cpu"`` is a
    ConfigError; an encoder without such a setting (BM25, hashing) runs on the CPU, with a warning
    that the reserved GPUs stay idle."""
    name = getattr(encoder, "name", type(encoder).__name__)
    device = getattr(getattr(encoder, "config", None), "device", None)
    if device is None:
        warnings.warn(f"ray executor: gpus_per_actor={gpus_per_actor} but encoder {name!r} has no device setting "
                      "and encodes on the CPU; the GPUs its actors reserve stay idle", UserWarning, stacklevel=3)
    elif device == "cpu":
        raise ConfigError(f"ray executor: gpus_per_actor={gpus_per_actor} but encoder {name!r} is set to "
                          "device='cpu'; set device='cuda' (an error on an actor that sees no CUDA device) "
                          "or device='auto' (the CPU there)")


class ChunkEncoder:
    """A Ray Data actor: holds one encoder (its model loads on the first chunk, once per actor)
    and encodes whole chunks, exactly as :func:`embedlab.shards.encode_chunks` would."""

    def __init__(self, encoder: Encoder, texts: Any, chunk_size: int, n_items: int) -> None:
        import ray

        self.encoder = encoder
        self.texts = ray.get(texts) if isinstance(texts, ray.ObjectRef) else texts
        self.chunk_size, self.n_items = chunk_size, n_items

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        rows: list[dict[str, Any]] = []
        for chunk in batch["chunk"].tolist():
            start = chunk * self.chunk_size
            stop = min(start + self.chunk_size, self.n_items)
            began = time.perf_counter()
            encoded = self.encoder.encode_documents(list(self.texts[start:stop]))
            rows.append({"chunk": chunk, "seconds": time.perf_counter() - began, **to_payload(encoded)})
        return {key: np.array([row[key] for row in rows], dtype=object if key.startswith("npy:") or key == "kind"
                              else None) for key in rows[0]}


class RayExecutor(Component):
    """Runs encoding and index building on a Ray cluster.

    Encoding: a Ray Data dataset of the chunks still missing from the cache, ``map_batches`` over
    an actor pool of ``actors`` encoders (``cpus_per_actor`` / ``gpus_per_actor`` each), one chunk
    per call; actors that die are restarted and their chunks retried (``max_restarts``), and each
    chunk is written to the cache as it arrives (a killed driver resumes). Indexing: the chunks are
    split into ``shards`` contiguous shards (default: ``actors``), each built on a Ray actor;
    search fans the queries out and merges the shards' top-k exactly.
    """

    kind = "executor"
    name = "ray"

    @attrs.frozen
    class Config:
        """``address``: a running cluster ("auto", "ray://host:port") or None for a local Ray
        started in this process; ``actors``: encoder actors; ``shards``: index shards (None:
        ``actors``); ``cpus_per_actor`` / ``gpus_per_actor``: resources per actor;
        ``max_restarts``: restarts of a dead actor (its work is retried)."""

        address: str | None = attrs.field(default=None, validator=attrs.validators.optional(
            attrs.validators.instance_of(str)))
        actors: int = attrs.field(default=2, validator=_optional_positive)
        shards: int | None = attrs.field(default=None, validator=_optional_positive)
        cpus_per_actor: float = attrs.field(default=1.0, validator=_non_negative)
        gpus_per_actor: float = attrs.field(default=0.0, validator=_non_negative)
        max_restarts: int = attrs.field(default=3, validator=attrs.validators.and_(
            attrs.validators.instance_of(int), attrs.validators.ge(0)))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self._started = False
        self._indexes: list[ShardedIndex] = []

    def _ray(self) -> Any:
        ray = _import_ray()
        if not ray.is_initialized():
            ray.init(address=self.config.address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
            self._started = True
        return ray

    def encode(self, encoder: Encoder, texts: Sequence[str], store: ChunkStore, *, desc: str,
               progress: bool) -> ChunkStore:
        if len(texts) != store.n_items:
            raise InvalidInputError(f"chunk store {store.root}: {len(texts)} texts for a job of "
                                    f"{store.n_items} items")
        if self.config.gpus_per_actor:
            check_gpu_encoder(encoder, self.config.gpus_per_actor)
        todo = [c for c in range(store.n_chunks) if not store.is_finished(c)]
        if not todo:
            return store
        ray = self._ray()
        config = self.config
        data = ray.data.from_items([{"chunk": c} for c in todo])
        encoded = data.map_batches(
            ChunkEncoder, batch_size=1, batch_format="numpy", concurrency=min(config.actors, len(todo)),
            num_cpus=config.cpus_per_actor, num_gpus=config.gpus_per_actor or None,
            fn_constructor_kwargs={"encoder": encoder, "texts": ray.put(list(texts)),
                                   "chunk_size": store.chunk_size, "n_items": store.n_items},
            max_restarts=config.max_restarts, max_task_retries=config.max_restarts)
        remaining = sum(min(store.chunk_size, store.n_items - c * store.chunk_size) for c in todo)
        with tqdm(total=store.n_items, initial=store.n_items - remaining, desc=f"{desc} (ray)", unit="doc",
                  unit_scale=True, smoothing=0.1, disable=not progress) as bar:
            for batch in encoded.iter_rows():
                chunk = int(batch["chunk"])
                vectors = from_payload(batch)
                write_chunk(store, chunk, vectors, float(batch["seconds"]))
                bar.update(emb.count(vectors))
        missing = [c for c in todo if not store.chunk_path(c).is_dir()]
        if missing:
            raise RuntimeError(f"ray executor: chunks {missing[:5]} were not returned by the workers")
        return store

    def build_index(self, index: Index, chunks: ChunkStore, attributes: Mapping[str, np.ndarray] | None,
                    compressor: Compressor | None) -> Index:
        ray = self._ray()
        shards = min(self.config.shards or self.config.actors, chunks.n_chunks)
        sharded = build_shards(ray, index, chunks, attributes, compressor, shards,
                               num_cpus=self.config.cpus_per_actor)
        self._indexes.append(sharded)
        return sharded

    def load_index(self, path: Any, *, mmap: bool = False) -> ShardedIndex:
        """A sharded index saved by :meth:`ShardedIndex.save`, each shard loaded (and verified) on
        its own actor (``cpus_per_actor`` each); closed with the executor."""
        sharded = ShardedIndex.load(path, ray=self._ray(), num_cpus=self.config.cpus_per_actor, mmap=mmap)
        self._indexes.append(sharded)
        return sharded

    def close(self) -> None:
        for index in self._indexes:
            index.close()
        self._indexes.clear()
        if self._started:
            _import_ray().shutdown()
            self._started = False
