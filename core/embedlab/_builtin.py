"""The core's own components, registered through the same hook as any plugin."""

from __future__ import annotations

from embedlab.datasets import BUILTIN_DATASETS
from embedlab.executors import EXECUTOR_DESCRIPTION, EXECUTOR_KIND, LocalExecutor
from embedlab.fusion import FusionRetriever
from embedlab.graph.data import GRAPH_DATASETS
from embedlab.graph.encoders import SpectralEncoder
from embedlab.hashing import HashingEncoder
from embedlab.hookspecs import hookimpl
from embedlab.index import ExactIndex
from embedlab.metrics import BUILTIN_METRICS
from embedlab.passages import PassageRetriever
from embedlab.pixels import PixelEncoder
from embedlab.plugins import API_VERSION
from embedlab.pq_compressor import PQCompressor

EMBEDLAB_API_VERSION = API_VERSION


@hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """The executor kind and the local executor, hashing and pixels encoders, exact index, PQ compressor,
    spectral graph encoder, fusion and passage retrievers, metrics and built-in datasets."""
    registry.add_kind(EXECUTOR_KIND, description=EXECUTOR_DESCRIPTION)
    registry.add(EXECUTOR_KIND, "local", LocalExecutor)
    registry.add("encoder", "hashing", HashingEncoder)
    registry.add("encoder", "pixels", PixelEncoder)
    registry.add("index", "exact", ExactIndex)
    registry.add("encoder", "spectral", SpectralEncoder)
    registry.add("retriever", "fusion", FusionRetriever)
    registry.add("retriever", "passages", PassageRetriever)
    registry.add("compressor", "pq", PQCompressor)
    for name, cls in BUILTIN_METRICS.items():
        registry.add("metric", name, cls)
    for name, factory in {**BUILTIN_DATASETS, **GRAPH_DATASETS}.items():
        registry.add("dataset", name, factory)
