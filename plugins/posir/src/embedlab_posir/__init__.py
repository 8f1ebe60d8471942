"""embedlab-posir: PosIR's position-bias protocol for embedlab.

Registers the dataset ``posir-needle`` (:mod:`embedlab_posir.generator`: the relevant passage moved
through long documents) and ships the position-sensitivity analysis
(:mod:`embedlab_posir.sensitivity`: per-position scores, PSI, primacy slope), applied to a run's
``results.json`` by ``python -m embedlab_posir RESULTS_DIR``.
"""

from __future__ import annotations

import embedlab
from embedlab_posir.generator import posir_needle
from embedlab_posir.sensitivity import PositionCurve, position_curve, relative_positions

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``posir-needle`` dataset."""
    registry.add("dataset", "posir-needle", posir_needle)


__all__ = ["EMBEDLAB_API_VERSION", "PositionCurve", "embedlab_register", "position_curve", "posir_needle",
           "relative_positions"]
