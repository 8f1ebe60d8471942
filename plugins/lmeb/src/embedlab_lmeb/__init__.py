"""embedlab-lmeb: LMEB, the Long-horizon Memory Embedding Benchmark (``KaLM-Embedding/LMEB``).

Registers the dataset ``lmeb`` (any LMEB task folder, :func:`~embedlab_lmeb.taskformat.load_lmeb`,
with scene-candidate filtering), the generated dataset ``lmeb-dialogue``
(:mod:`embedlab_lmeb.dialogue`) and the measure ``Rcap`` (LMEB's capped recall, ``Rcap@10``).
"""

from __future__ import annotations

import embedlab
from embedlab_lmeb.dialogue import lmeb_dialogue
from embedlab_lmeb.measures import CappedRecall
from embedlab_lmeb.taskformat import load_lmeb, scene_of, write_lmeb

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``lmeb`` and ``lmeb-dialogue`` datasets and the ``Rcap`` measure."""
    registry.add("dataset", "lmeb", load_lmeb)
    registry.add("dataset", "lmeb-dialogue", lmeb_dialogue)
    registry.add("metric", "Rcap", CappedRecall)


__all__ = ["EMBEDLAB_API_VERSION", "CappedRecall", "embedlab_register", "lmeb_dialogue", "load_lmeb", "scene_of",
           "write_lmeb"]
