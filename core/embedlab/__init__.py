"""embedlab: a plugin-based framework for embedding-based retrieval.

Compose components by name (provided by installed plugins) or construct them directly::

    import embedlab

    dataset = embedlab.load_dataset("python-stdlib")
    pipeline = embedlab.Pipeline.from_names(encoder="bm25", index="exact")
    pipeline.build(dataset.corpus)
    split = dataset.split("test")
    ranking = pipeline.search(split.queries, k=100)
    print(embedlab.evaluate(ranking, split.qrels, ["nDCG@10", "R@100"]))
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from embedlab.components import Component, config_dict, describe, fingerprint
from embedlab.dataset import Corpus, Dataset, Qrels, Queries, Split
from embedlab.embeddings import (
    BinaryCodes,
    EmbeddingKind,
    Embeddings,
    MultiVectorEmbeddings,
    as_dense,
    as_sparse,
)
from embedlab.errors import (
    AmbiguousComponentError,
    ConfigError,
    EmbedlabError,
    InvalidInputError,
    NotFittedError,
    PluginError,
    StateError,
    UnknownComponentError,
)
from embedlab.hookspecs import hookimpl
from embedlab.media import Image, ImageText, InputKind
from embedlab.metrics import EvaluationResult, evaluate, parse_metric
from embedlab.pipeline import Pipeline
from embedlab.plugins import API_VERSION, PluginHost
from embedlab.protocols import (
    AcceptsCompressor,
    CodeScorer,
    Compressor,
    Encoder,
    FitsFromChunks,
    Index,
    LearnsFromQueries,
    Metric,
    PreparedCodeScorer,
    ReportsTimings,
    Reranker,
    Retriever,
    Trainable,
    UsesEmbeddingCache,
)
from embedlab.ranking import Ranking, SearchResult
from embedlab.registry import Registry
from embedlab.training import TrainingData

try:
    __version__ = metadata.version("embedlab")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

EMBEDLAB_API_VERSION = API_VERSION

_host: PluginHost | None = None


def plugin_host(*, reload: bool = False) -> PluginHost:
    """The process-wide plugin host: built-in components plus every installed plugin."""
    global _host
    if _host is None or reload:
        from embedlab import _builtin

        host = PluginHost()
        host.load_plugin(_builtin, "embedlab", "embedlab", __version__)
        host.load_entry_points()
        _host = host
    return _host


def registry() -> Registry:
    """The registry of every installed component."""
    return plugin_host().registry


def create(kind: str, name: str, **params: Any) -> Any:
    """Build the component ``name`` of ``kind`` (encoder, compressor, index, reranker, metric)."""
    return registry().create(kind, name, **params)


def load_dataset(name: str, **params: Any) -> Dataset:
    """Build or load a registered dataset (``embedlab datasets`` lists them)."""
    return registry().create("dataset", name, **params)


def run_experiment(config: Any, *, output: str | Path | None = None, report: str | Path | None = None,
                   cache: Any = True, progress: bool = True, executor: Any = None) -> Any:
    """Run an experiment as ``embedlab run`` does and return its result (the same code runs both).

    ``config`` is an experiment TOML file or an :class:`embedlab.experiment.ExperimentConfig`
    (``embedlab.experiment.parse_config(text)``). ``output`` writes results.json, manifest.json,
    results.csv and TREC runs there (``--output``); ``report`` the HTML page (``--report``).
    ``cache``: True (the default cache, ``$EMBEDLAB_CACHE_DIR``), False (none, ``--no-cache``), a cache
    directory (``--cache-dir``) or an :class:`embedlab.cache.EmbeddingCache`. Plugins that failed
    to load and ambiguous component names are reported as warnings. Returns an
    :class:`embedlab.experiment.runner.ExperimentResult` (``format_table(result)`` in
    :mod:`embedlab.experiment.report` prints the table), or the node-classification result.
    """
    from embedlab.experiment.api import run

    return run(config, output=output, report=report, cache=cache, progress=progress, executor=executor).result


def load_component(path: str | Path, *, mmap: bool = False) -> Any:
    """Load any saved component: its manifest names the kind, name and distribution, the registry
    the class. ``mmap=True`` memory-maps the large arrays instead of reading them (for components
    whose ``load`` takes ``mmap``, e.g. the exact index; others raise ConfigError)."""
    import inspect

    from embedlab.persistence import guarded_load, read_manifest

    manifest = read_manifest(path)
    kind, name = manifest["kind"], manifest["name"]
    distribution = manifest.get("distribution")
    try:
        spec = registry().spec(kind, name, distribution=distribution if isinstance(distribution, str) else None)
    except EmbedlabError as error:
        raise StateError(f"{path}: saved by a component that is not available here: {error}") from error
    loader = getattr(spec.factory, "load", None)
    if loader is None:
        raise StateError(f"{kind} {name!r} cannot be loaded from disk")
    if not mmap:
        return guarded_load(path, loader)
    if "mmap" not in inspect.signature(loader).parameters:
        raise ConfigError(f"{kind} {name!r} ({spec.distribution}) cannot memory-map its state: its load() "
                          "takes no mmap parameter; use load_component(path) to read it into memory")
    return guarded_load(path, lambda saved: loader(saved, mmap=True))


__all__ = [
    "EvaluationResult", "evaluate", "parse_metric",
    "API_VERSION", "AcceptsCompressor", "AmbiguousComponentError", "BinaryCodes", "CodeScorer", "Component",
    "Compressor",
    "ConfigError", "Corpus", "Dataset", "EMBEDLAB_API_VERSION", "EmbeddingKind", "Embeddings",
    "EmbedlabError", "Encoder", "FitsFromChunks", "Image", "ImageText", "Index", "InputKind", "InvalidInputError",
    "LearnsFromQueries",
    "Metric", "MultiVectorEmbeddings",
    "NotFittedError", "Pipeline", "PluginError", "PreparedCodeScorer", "Qrels", "Queries", "Ranking", "Registry",
    "Reranker", "ReportsTimings",
    "Retriever", "SearchResult", "Split", "StateError", "Trainable", "TrainingData", "UnknownComponentError",
    "UsesEmbeddingCache", "as_dense", "as_sparse", "config_dict", "create", "describe",
    "fingerprint", "hookimpl", "load_component", "load_dataset", "plugin_host", "registry", "run_experiment",
]
