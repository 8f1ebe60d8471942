"""The core's own components, registered through the same hook as any plugin."""

from __future__ import annotations

from embedlab.datasets import BUILTIN_DATASETS
from embedlab.graph.data import GRAPH_DATASETS
from embedlab.graph.encoders import SpectralEncoder
from embedlab.hookspecs import hookimpl
from embedlab.index import ExactIndex
from embedlab.metrics import BUILTIN_METRICS
from embedlab.plugins import API_VERSION
from embedlab.pq_compressor import PQCompressor

EMBEDLAB_API_VERSION = API_VERSION


@hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Exact index, PQ compressor, spectral graph encoder, metrics and built-in datasets."""
    registry.add("index", "exact", ExactIndex)
    registry.add("encoder", "spectral", SpectralEncoder)
    registry.add("compressor", "pq", PQCompressor)
    for name, cls in BUILTIN_METRICS.items():
        registry.add("metric", name, cls)
    for name, factory in {**BUILTIN_DATASETS, **GRAPH_DATASETS}.items():
        registry.add("dataset", name, factory)
