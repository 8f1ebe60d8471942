"""embedlab-storage: storage-optimised embeddings (Huerga-Perez et al., arXiv 2505.00105).

One compressor, ``storage``, configured by a spec string such as ``"float8_e4m3"``,
``"int8"``, ``"binary"`` or ``"pca:0.5+float8_e4m3"`` (REDUCER:FRACTION+QUANTISER), and a
storage-vs-quality sweep with its Pareto front (:mod:`embedlab_storage.pareto`).
"""

from __future__ import annotations

import embedlab
from embedlab_storage.compressor import StorageCompressor
from embedlab_storage.spec import QUANTISERS, REDUCERS, StorageSpec, parse_spec

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``storage`` compressor."""
    registry.add("compressor", "storage", StorageCompressor)


@embedlab.hookimpl
def embedlab_cli(subparsers) -> None:  # type: ignore[no-untyped-def]
    """``embedlab pareto CONFIG``: the storage-vs-quality sweep and its Pareto-front plot."""
    from embedlab_storage import pareto

    parser = subparsers.add_parser("pareto", help="sweep storage configurations, plot quality vs bytes")
    pareto.add_arguments(parser)
    parser.set_defaults(func=pareto.run)


__all__ = ["EMBEDLAB_API_VERSION", "QUANTISERS", "REDUCERS", "StorageCompressor", "StorageSpec",
           "embedlab_cli", "embedlab_register", "parse_spec"]
