"""embedlab-limit: "On the Theoretical Limitations of Embedding-Based Retrieval" (Weller et al., 2025).

Registers the datasets ``limit-small`` (the published 46-document LIMIT-small) and
``limit-generated`` (LIMIT-style corpora of any size), and ships the free-embedding optimiser and the
critical-n search (``python -m embedlab_limit.critical``). torch is imported only by those
(:mod:`embedlab_limit.free_embedding`), not when embedlab loads the plugin.
"""

from __future__ import annotations

import embedlab
from embedlab_limit.generator import limit_generated
from embedlab_limit.limit_small import limit_small

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``limit-small`` and ``limit-generated`` datasets."""
    registry.add("dataset", "limit-small", limit_small)
    registry.add("dataset", "limit-generated", limit_generated)


__all__ = ["EMBEDLAB_API_VERSION", "embedlab_register", "limit_generated", "limit_small"]
