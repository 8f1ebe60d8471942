"""``evaluate(ranking, qrels, metrics)``: several measures over one ranking, per query and aggregated."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import attrs
import numpy as np

from embedlab.dataset import Qrels
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.metrics import compute
from embedlab.metrics.measures import Measure, parse_metric
from embedlab.ranking import Ranking
from embedlab.registry import Registry


@attrs.frozen(eq=False)
class EvaluationResult:
    """Aggregates keyed by canonical metric string, and per-query values aligned to ``query_ids``.

    ``query_ids`` are the qrels queries, sorted; ``per_query[m][i]`` is metric ``m`` on
    ``query_ids[i]``. Queries absent from the ranking are included with value 0 (``trec_eval -c``).
    """

    metrics: tuple[str, ...]
    query_ids: np.ndarray
    per_query: Mapping[str, np.ndarray]
    aggregates: Mapping[str, float]

    def __getitem__(self, metric: str) -> float:
        return self.aggregates[metric]

    def query_values(self, metric: str) -> dict[str, float]:
        """``{query_id: value}`` of one metric."""
        return dict(zip(self.query_ids.tolist(), self.per_query[metric].tolist()))

    def to_json(self, per_query: bool = True) -> dict[str, Any]:
        """JSON-ready data: aggregates, query count and (optionally) per-query values."""
        data: dict[str, Any] = {"num_queries": int(self.query_ids.size),
                                "aggregates": {m: self.aggregates[m] for m in self.metrics}}
        if per_query:
            data["per_query"] = {m: self.query_values(m) for m in self.metrics}
        return data

    def __str__(self) -> str:
        width = max((len(m) for m in self.metrics), default=0)
        lines = [f"{m:<{width}}  {self.aggregates[m]:.4f}" for m in self.metrics]
        return "\n".join([*lines, f"({self.query_ids.size} queries)"])


def _as_metric(metric: Any, registry: Registry | None) -> Any:
    if isinstance(metric, str):
        return parse_metric(metric, registry)
    if not callable(getattr(metric, "per_query", None)) or not callable(getattr(metric, "aggregate", None)):
        raise ConfigError(f"{metric!r} is neither a metric string such as 'nDCG@10' nor a metric "
                          "object with per_query and aggregate")
    return metric


def _values(metric: Any, judged: compute.JudgedRanking, ranking: Ranking, qrels: Qrels) -> np.ndarray:
    if isinstance(metric, Measure) and not metric.overrides_per_query():
        values = np.asarray(metric.compute(judged), dtype=np.float64)
        if values.shape != judged.query_ids.shape:
            raise InvalidInputError(f"metric {metric}: compute() returned shape {values.shape}, expected "
                                    f"one value per qrels query {judged.query_ids.shape}")
        return values
    values = metric.per_query(ranking, qrels)
    missing = [q for q in judged.query_ids.tolist() if q not in values]
    if missing:
        raise InvalidInputError(f"metric {metric} returned no value for {len(missing)} qrels "
                                f"query(s), e.g. {missing[:5]}")
    return np.asarray([values[q] for q in judged.query_ids.tolist()], dtype=np.float64)


def evaluate(ranking: Ranking, qrels: Qrels, metrics: Iterable[Any] | str,
             registry: Registry | None = None) -> EvaluationResult:
    """Evaluate ``ranking`` against ``qrels`` with ``metrics`` (strings like ``"nDCG@10"`` or objects).

    Built-in measures share one join of ranking and qrels; per-query values equal trec_eval's
    (see :mod:`embedlab.metrics.compute` for tie-breaking and which queries count).
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    objects: dict[str, Any] = {}
    for metric in metrics:
        obj = _as_metric(metric, registry)
        objects.setdefault(str(obj), obj)
    if not objects:
        raise ConfigError("evaluate: no metrics given; pass e.g. ['nDCG@10', 'AP']")
    if not qrels:
        raise InvalidInputError("evaluate: the qrels hold no query to evaluate")
    judged = compute.prepare(ranking, qrels)
    per_query = {name: _values(obj, judged, ranking, qrels) for name, obj in objects.items()}
    aggregates = {name: float(obj.aggregate(dict(zip(judged.query_ids.tolist(), per_query[name].tolist()))))
                  for name, obj in objects.items()}
    return EvaluationResult(tuple(objects), judged.query_ids, per_query, aggregates)
