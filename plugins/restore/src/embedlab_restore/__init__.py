"""embedlab-restore: RESTORE, "Graph Embedding Assessment Through Reconstruction" (Yip et al., 2023).

* :func:`evaluate_reconstruction`: k-hop node-level reconstruction mAP and the precision curve of
  any node embedding (an ``(n, d)`` matrix, dense or sparse);
* :func:`label_reconstruction`: the semantic test on labelled graphs;
* the ``restore`` dataset: k-hop reconstruction as a retrieval task for ``embedlab run``.
"""

from __future__ import annotations

import embedlab
from embedlab_restore.dataset import restore_dataset
from embedlab_restore.reconstruction import Reconstruction, evaluate_reconstruction, khop_reach, label_reconstruction

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``restore`` dataset (k-hop reconstruction of any graph dataset)."""
    registry.add("dataset", "restore", restore_dataset)


__all__ = ["EMBEDLAB_API_VERSION", "Reconstruction", "embedlab_register", "evaluate_reconstruction", "khop_reach",
           "label_reconstruction", "restore_dataset"]
