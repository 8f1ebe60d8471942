"""Executors: where a pipeline's heavy stages run (encoding the corpus, building the index).

The core has one, ``local`` (this process). Plugins register others under the component kind
``executor`` (embedlab-ray adds ``ray``); an experiment picks one with ``[experiment] executor``
and ``run_experiment(config, executor=...)``, a pipeline with ``Pipeline(executor=...)``.

An executor fills the missing chunks of a :class:`~embedlab.shards.ChunkStore` (so every executor
shares the cache's resumable chunked entries) and turns the finished chunks into something that
answers ``search`` exactly like the pipeline's index built in this process would: the index
itself, or a stand-in that fans the queries out to shards and merges their top-k
(:func:`embedlab.index.topk.merge_results`). Evaluation always runs in the calling process.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from embedlab.components import Component
from embedlab.protocols import AcceptsCompressor, BuildsFromChunks, Compressor, Encoder, Index
from embedlab.shards import ChunkStore, encode_chunks

EXECUTOR_KIND = "executor"
EXECUTOR_DESCRIPTION = "where a pipeline's heavy stages run (encoding, index building, search)"


@runtime_checkable
class Executor(Protocol):
    """Runs the corpus encoding and the index build of a pipeline."""

    name: str

    def encode(self, encoder: Encoder, texts: Sequence[str], store: ChunkStore, *, desc: str,
               progress: bool) -> ChunkStore:
        """Encode the chunks of ``texts`` that ``store`` lacks with ``encoder.encode_documents``
        (one call per chunk, so results equal :func:`embedlab.shards.encode_chunks`)."""

    def build_index(self, index: Index, chunks: ChunkStore, attributes: Mapping[str, np.ndarray] | None,
                    compressor: Compressor | None) -> Index:
        """An index over ``chunks`` answering ``search`` as ``index`` built here would; a fitted
        ``compressor`` is given to indexes that store codes."""

    def close(self) -> None:
        """Release what the executor holds (workers, connections)."""


class LocalExecutor(Component):
    """Everything in this process: chunks encoded one after the other, one index."""

    kind = EXECUTOR_KIND
    name = "local"

    def encode(self, encoder: Encoder, texts: Sequence[str], store: ChunkStore, *, desc: str,
               progress: bool) -> ChunkStore:
        return encode_chunks(store, texts, encoder.encode_documents, desc=desc, progress=progress)

    def build_index(self, index: Index, chunks: ChunkStore, attributes: Mapping[str, np.ndarray] | None,
                    compressor: Compressor | None) -> Index:
        return build_local_index(index, chunks, attributes, compressor)

    def close(self) -> None:
        return None


def build_local_index(index: Index, chunks: ChunkStore, attributes: Mapping[str, np.ndarray] | None,
                      compressor: Compressor | None) -> Index:
    """Build ``index`` on ``chunks`` in this process, one chunk at a time where it can
    (:class:`~embedlab.protocols.BuildsFromChunks`); an index that cannot store codes is built on
    the compressor's decoded vectors."""
    if compressor is not None and not isinstance(index, AcceptsCompressor):
        index.build(compressor.decode(compressor.encode(chunks.gather())), attributes)
        return index
    if compressor is not None:
        index.use_compressor(compressor)
    if isinstance(index, BuildsFromChunks):
        index.build_from_chunks(chunks, attributes)
    else:
        index.build(chunks.gather(), attributes)
    return index


def create_executor(spec: Any) -> Executor:
    """``None``/``"local"``, an executor name, ``{"name": ..., **params}``, or an executor object."""
    if spec is None:
        return LocalExecutor()
    if isinstance(spec, (str, Mapping)):
        from embedlab.pipeline import create_component

        return create_component(EXECUTOR_KIND, spec)
    if not isinstance(spec, Executor):
        raise TypeError(f"not an executor: {spec!r}")
    return spec
