"""embedlab-margin: maximal-margin free embeddings ("Is Dimensionality a Barrier for Retrieval
Models?", Bangachev, Bresler, Kogan, Polyanskiy, 2026).

Margin diagnostics of any query/document embeddings against qrels (:mod:`embedlab_margin.margins`),
the sigmoid loss with learnable temperature and bias for embedlab-limit's free-embedding optimiser
(:mod:`embedlab_margin.sigmoid`), and the smallest-dimension experiment
(``python -m embedlab_margin.min_dimension``). The plugin registers no component: it provides
experiments and functions, and loads torch only when they are used.
"""

from __future__ import annotations

import embedlab

EMBEDLAB_API_VERSION = "1.0"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Nothing to register: the margin tools are functions and a command, not pipeline components."""


__all__ = ["EMBEDLAB_API_VERSION", "embedlab_register"]
