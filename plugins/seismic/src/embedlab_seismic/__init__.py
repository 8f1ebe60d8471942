"""embedlab-seismic: the Seismic inverted index for learned sparse vectors, as an embedlab index.

embedlab imports this module through the ``embedlab`` entry point declared in pyproject.toml,
checks ``EMBEDLAB_API_VERSION`` and calls ``embedlab_register``.
"""

from __future__ import annotations

import embedlab
from embedlab_seismic.config import SeismicConfig
from embedlab_seismic.index import SeismicIndex
from embedlab_seismic.jsonl import read_jsonl

#: The embedlab plugin API this plugin is written against (major.minor).
EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``seismic`` index."""
    registry.add("index", "seismic", SeismicIndex)


__all__ = ["EMBEDLAB_API_VERSION", "SeismicConfig", "SeismicIndex", "embedlab_register", "read_jsonl"]
