"""embedlab-tables: compressed embedding tables for CTR models, and the benchmark that compares them.

* A harness in torch (:mod:`embedlab_tables.training`): DLRM, DeepFM and FM models around a
  pluggable table, a Criteo reader, a seeded synthetic generator (Zipfian fields, hidden model with
  interactions, skew knob), AUC and log-loss, table memory in bytes, training and inference time.
* Declares the component kind ``embedding-table`` and registers the methods of Zhang et al.,
  "Experimental Analysis of Large-scale Learnable Vector Storage Compression" (VLDB 2024) that its
  code configures (see the README for the list); other plugins add theirs (embedlab-unified-embedding,
  embedlab-optembed).
* The retrieval side (:mod:`embedlab_tables.posthoc`): the benchmark's compressors that have a
  post-hoc meaning on a fixed matrix of vectors, as ``compressor`` components (``table-int``,
  ``table-prune``, ``table-tt``, ``table-dedup``).
* ``embedlab tables-grid``: a method x compression-ratio grid with paired tests across seeds, a table
  and a plot of AUC against bytes.
"""

from __future__ import annotations

import embedlab
from embedlab_tables.data import CTRData
from embedlab_tables.method import KIND, KIND_DESCRIPTION, FittedTable, RatioConfig, TableMethod
from embedlab_tables.schema import BudgetError, TableSchema
from embedlab_tables.synthetic import SyntheticConfig, generate

EMBEDLAB_API_VERSION = "1.1"


def table_methods() -> dict[str, type[TableMethod]]:
    """name -> class of the methods this plugin registers."""
    from embedlab_tables.methods import dimension, dynamic, pruning, quantization, static

    classes = [static.Full, static.Hash, static.QuotientRemainder, static.TTRec, static.DHE, static.ROBE,
               dynamic.AdaptEmb, dynamic.DPQ, dynamic.MGQE, dynamic.Dedup, dimension.MDE, dimension.AutoDim,
               pruning.DeepLight, pruning.PEP, pruning.AutoSrh, quantization.Int8, quantization.Int16,
               quantization.ALPT8, quantization.ALPT16]
    return {cls.name: cls for cls in classes}


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Declare the ``embedding-table`` kind and register the benchmark's methods."""
    from embedlab_tables.posthoc import COMPRESSORS

    registry.add_kind(KIND, description=KIND_DESCRIPTION)
    for name, cls in table_methods().items():
        registry.add(KIND, name, cls)
    for cls in COMPRESSORS:  # the post-hoc counterparts on fixed vectors (the retrieval side)
        registry.add("compressor", cls.name, cls)


@embedlab.hookimpl
def embedlab_cli(subparsers) -> None:  # type: ignore[no-untyped-def]
    """``embedlab tables-grid``: the method x compression-ratio grid, its table and AUC-vs-bytes plot."""
    from embedlab_tables import grid

    parser = subparsers.add_parser("tables-grid", help="embedding-table methods x compression ratios on CTR data")
    grid.add_arguments(parser)
    parser.set_defaults(func=grid.run)


__all__ = ["BudgetError", "CTRData", "EMBEDLAB_API_VERSION", "FittedTable", "KIND", "RatioConfig", "SyntheticConfig",
           "TableMethod", "TableSchema", "embedlab_cli", "embedlab_register", "generate", "table_methods"]
