"""embedlab-optembed: OptEmbed (Lyu, Dong, Li, Zhang, Zhang, Yang; "OptEmbed: Learning Optimal
Embedding Table for Click-through Rate Prediction", CIKM 2022) as an ``embedding-table`` method.

1. Supernet: one table with learnable per-field pruning thresholds (a feature is kept while the L1
   norm of its row exceeds its field's threshold; the step's gradient is a straight-through
   estimator) and uniform sampling of each field's dimension (prefix masks) in every batch.
2. Evolutionary search of per-field dimensions, fitness = validation AUC of the supernet.
3. Retrain from the same initialisation with the kept features and the searched dimensions.
"""

from __future__ import annotations

import embedlab
from embedlab_optembed.method import OptEmbed, OptEmbedField, SupernetTable
from embedlab_optembed.ste import binary_step

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register ``optembed`` in the ``embedding-table`` kind that embedlab-tables declares."""
    from embedlab_tables import KIND

    registry.add(KIND, OptEmbed.name, OptEmbed)


__all__ = ["EMBEDLAB_API_VERSION", "OptEmbed", "OptEmbedField", "SupernetTable", "binary_step", "embedlab_register"]
