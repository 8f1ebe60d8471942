"""embedlab-qdc: Query Drift Compensation (Goswami, Wang, Twardowski and van de Weijer, CoLLAs 2025)
for continual fine-tuning without re-indexing.

* encoder ``qdc``: documents stay encoded by the old model (the index is kept), queries are encoded
  by the model fine-tuned on the new task minus the mean drift of that task's training queries;
* loss ``qdc-kd``: InfoNCE plus cosine distillation of queries and documents to the previous model
  (the paper's optional "KD"), on embedlab-train.
"""

from __future__ import annotations

import embedlab
from embedlab_qdc.encoder import QueryDriftCompensation
from embedlab_qdc.loss import DriftDistillation

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``qdc`` encoder and the ``qdc-kd`` loss (kind ``loss`` of embedlab-train)."""
    registry.add("encoder", "qdc", QueryDriftCompensation)
    registry.add("loss", "qdc-kd", DriftDistillation)


__all__ = ["EMBEDLAB_API_VERSION", "DriftDistillation", "QueryDriftCompensation", "embedlab_register"]
