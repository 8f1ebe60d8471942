"""embedlab-aspects: aspect-based document embeddings (Ostendorff et al., JCDL 2022).

Registers the retriever ``aspects`` (:mod:`embedlab_aspects.retriever`: one named vector and one
index per aspect of a document, aspect-conditioned search, per-aspect encoders trained with
embedlab-train) and the generated dataset ``aspects-people`` (:mod:`embedlab_aspects.people`:
people with a job, a city and a hobby). ``python -m embedlab_aspects`` measures every space on every
aspect (:mod:`embedlab_aspects.matrix`).
"""

from __future__ import annotations

import embedlab
from embedlab_aspects.people import ASPECTS, people
from embedlab_aspects.retriever import AspectRetriever

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the retriever ``aspects`` and the dataset ``aspects-people``."""
    registry.add("retriever", "aspects", AspectRetriever)
    registry.add("dataset", "aspects-people", people)


__all__ = ["ASPECTS", "EMBEDLAB_API_VERSION", "AspectRetriever", "embedlab_register", "people"]
