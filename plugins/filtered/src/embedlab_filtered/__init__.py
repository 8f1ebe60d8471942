"""embedlab-filtered: filtered nearest-neighbour search on document attributes.

Three strategies, each an embedlab index taking the filters of
:func:`embedlab.filters.resolve_filter`: ``prefilter`` (exact search over the passing documents),
``postfilter`` (any installed index, searched deeper until ``k`` results pass) and ``acorn``
(ACORN-gamma, a predicate-agnostic graph searched under the filter).
"""

from __future__ import annotations

import embedlab
from embedlab_filtered.acorn import AcornConfig, AcornIndex
from embedlab_filtered.postfilter import PostfilterIndex
from embedlab_filtered.prefilter import PrefilterIndex

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``prefilter``, ``postfilter`` and ``acorn`` indexes."""
    registry.add("index", "prefilter", PrefilterIndex)
    registry.add("index", "postfilter", PostfilterIndex)
    registry.add("index", "acorn", AcornIndex)


__all__ = ["AcornConfig", "AcornIndex", "EMBEDLAB_API_VERSION", "PostfilterIndex", "PrefilterIndex",
           "embedlab_register"]
