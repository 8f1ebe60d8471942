"""Evaluation measures (nDCG, RR, R, P, AP, Success) that reproduce trec_eval, vectorised over rankings.

>>> result = evaluate(ranking, qrels, ["nDCG@10", "P(rel=2)@5", "AP"])   # doctest: +SKIP
>>> result.aggregates["nDCG@10"]                                         # doctest: +SKIP

The measure classes live in :mod:`embedlab.metrics.measures`, the arrays they compute on (and the
trec_eval conventions: tie-breaking, which queries count) in :mod:`embedlab.metrics.compute`.
"""

from embedlab.metrics.evaluation import EvaluationResult, evaluate
from embedlab.metrics.measures import BUILTIN_METRICS, Measure, parse_metric

__all__ = ["BUILTIN_METRICS", "EvaluationResult", "Measure", "evaluate", "parse_metric"]
