"""embedlab-mteb: embedlab pipelines and encoders inside MTEB v2, and MTEB retrieval tasks built offline
from embedlab datasets. The core never imports this package (nor mteb)."""

from __future__ import annotations

import embedlab
from embedlab_mteb.adapter import MTEBSearch, local_retrieval_task
from embedlab_mteb.encoder import MTEBEncoder

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """No components: this plugin adapts embedlab to MTEB (``MTEBSearch``, ``MTEBEncoder``,
    ``local_retrieval_task``)."""


__all__ = ["EMBEDLAB_API_VERSION", "MTEBEncoder", "MTEBSearch", "embedlab_register", "local_retrieval_task"]
