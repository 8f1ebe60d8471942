"""Measure objects written as ir_measures writes them, and the parser of those strings.

``NAME``, ``NAME@CUTOFF`` or ``NAME(param=value,...)@CUTOFF``: ``nDCG@10``, ``RR``, ``AP@100``,
``P(rel=2)@10``. ``str(measure)`` is canonical: the cutoff after ``@``, the other parameters in
parentheses sorted by name, parameters at their default left out. Measure names are looked up in
the component registry (kind ``metric``), so a plugin adds a measure with
``registry.add("metric", "MyMeasure", MyMeasure)``; subclassing :class:`Measure` gives it parsing,
printing, equality and the shared evaluation arrays for free.
"""

from __future__ import annotations

import ast
import re
from typing import Any, ClassVar, Mapping

import attrs
import numpy as np

from embedlab.components import Component
from embedlab.dataset import Qrels
from embedlab.errors import ConfigError, UnknownComponentError
from embedlab.metrics import compute
from embedlab.metrics.compute import JudgedRanking
from embedlab.ranking import Ranking
from embedlab.registry import Registry


def _positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None and attribute.name == "cutoff":
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def _plain(value: Any) -> Any:
    """numpy integers become Python ints, so configs print and compare like parsed ones."""
    return int(value) if isinstance(value, np.integer) else value


@attrs.frozen
class CutoffConfig:
    """Parameters of a measure with an optional ranking cutoff."""

    cutoff: int | None = attrs.field(default=None, converter=_plain, validator=_positive_int)


@attrs.frozen
class RelevanceConfig:
    """Ranking cutoff and relevance threshold: a document is relevant when its grade is >= rel."""

    cutoff: int | None = attrs.field(default=None, converter=_plain, validator=_positive_int)
    rel: int = attrs.field(default=1, converter=_plain, validator=_positive_int)


class Measure(Component):
    """Base class of evaluation measures (the :class:`embedlab.Metric` protocol).

    Subclasses set ``name`` and ``Config`` (which has a ``cutoff`` field) and implement one of:

    * :meth:`compute`, vectorised over the shared :class:`~embedlab.metrics.compute.JudgedRanking`
      arrays (grades, retrieved and judged masks in trec_eval order, ideal grades), which
      :func:`embedlab.evaluate` builds once for every measure; or
    * :meth:`per_query`, from the ranking and qrels themselves. An overridden ``per_query`` is what
      :func:`embedlab.evaluate` calls.

    Either way the measure parses from and prints as ``Name(param=value)@cutoff``.
    """

    kind: ClassVar[str] = "metric"
    Config: ClassVar[type] = CutoffConfig
    #: Whether the measure is undefined without ``@cutoff`` (P, R, Success), as in ir_measures.
    cutoff_required: ClassVar[bool] = False

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        if not (self.overrides_per_query() or type(self).compute is not Measure.compute):
            raise TypeError(f"measure {type(self).__qualname__} implements neither compute(judged) nor "
                            "per_query(ranking, qrels); implement one of them")
        super().__init__(config, **params)
        if self.cutoff_required and self.config.cutoff is None:
            raise ConfigError(f"measure {self.name} needs a cutoff: write it like {self.name}@10")

    @classmethod
    def overrides_per_query(cls) -> bool:
        """Whether the subclass computes its values in its own :meth:`per_query`."""
        return cls.per_query is not Measure.per_query

    @property
    def cutoff(self) -> int | None:
        return self.config.cutoff

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        """Values for the rows of ``judged`` (one per qrels query, sorted by id)."""
        raise NotImplementedError

    def per_query(self, ranking: Ranking, qrels: Qrels) -> dict[str, float]:
        """Value for every query in ``qrels``; queries missing from ``ranking`` score 0."""
        judged = compute.prepare(ranking, qrels)
        return dict(zip(judged.query_ids.tolist(), self.compute(judged).tolist()))

    def aggregate(self, values: Mapping[str, float]) -> float:
        """Mean over queries (NaN when there are none)."""
        return float(np.mean(list(values.values()))) if values else float("nan")

    def __str__(self) -> str:
        params = []
        for field in attrs.fields(type(self.config)):
            value = getattr(self.config, field.name)
            if field.name != "cutoff" and value != field.default:
                params.append(f"{field.name}={value!r}")
        text = f"{self.name}({','.join(sorted(params))})" if params else self.name
        return text if self.cutoff is None else f"{text}@{self.cutoff}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.config == self.config  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), self.config))


class NDCG(Measure):
    """Normalised discounted cumulative gain, gain = grade (trec_eval ndcg / ndcg_cut)."""

    name = "nDCG"

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return compute.ndcg(judged, self.cutoff)


class ReciprocalRank(Measure):
    """Reciprocal rank of the first relevant document (trec_eval recip_rank), optionally cut at k."""

    name = "RR"
    Config = RelevanceConfig

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return compute.reciprocal_rank(judged, self.cutoff, self.config.rel)


class Recall(Measure):
    """Share of the relevant documents retrieved in the top k (trec_eval recall_k)."""

    name = "R"
    Config = RelevanceConfig
    cutoff_required = True

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return compute.recall(judged, self.cutoff, self.config.rel)


class Precision(Measure):
    """Share of the top k that is relevant, always divided by k (trec_eval P_k)."""

    name = "P"
    Config = RelevanceConfig
    cutoff_required = True

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return compute.precision(judged, self.cutoff, self.config.rel)


class AveragePrecision(Measure):
    """Average precision over all relevant documents (trec_eval map / map_cut)."""

    name = "AP"
    Config = RelevanceConfig

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return compute.average_precision(judged, self.cutoff, self.config.rel)


class Success(Measure):
    """1 when a relevant document is in the top k, else 0 (trec_eval success_k)."""

    name = "Success"
    Config = RelevanceConfig
    cutoff_required = True

    def compute(self, judged: JudgedRanking) -> np.ndarray:
        return compute.success(judged, self.cutoff, self.config.rel)


BUILTIN_METRICS: dict[str, type[Measure]] = {
    cls.name: cls for cls in (NDCG, ReciprocalRank, Recall, Precision, AveragePrecision, Success)
}

_SYNTAX = re.compile(r"^\s*(?P<name>(?:[A-Za-z0-9][A-Za-z0-9_.-]*:)?[A-Za-z0-9][A-Za-z0-9_.-]*)\s*"
                     r"(?:\((?P<params>[^()]*)\))?\s*(?:@\s*(?P<cutoff>\d+))?\s*$")
_PARAM = re.compile(r"^\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?P<value>.+?)\s*$")


def _known(registry: Registry) -> str:
    return ", ".join(registry.names("metric")) or "none"


def _parse_params(text: str, params: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for item in params.split(","):
        if not item.strip():
            continue
        match = _PARAM.match(item)
        if match is None:
            raise ConfigError(f"metric {text!r}: parameter {item.strip()!r} is not written key=value")
        try:
            value = ast.literal_eval(match["value"])
        except (ValueError, SyntaxError):
            raise ConfigError(f"metric {text!r}: value {match['value']!r} of {match['key']} is not a "
                              "number, boolean or quoted string") from None
        if match["key"] in parsed:
            raise ConfigError(f"metric {text!r}: parameter {match['key']} is given twice")
        parsed[match["key"]] = value
    return parsed


def parse_metric(text: str, registry: Registry | None = None) -> Any:
    """Build the measure that ``text`` names (``nDCG@10``, ``P(rel=2)@10``...).

    The name is looked up in ``registry`` (by default :func:`embedlab.registry`, i.e. the built-in
    measures plus those of installed plugins); ``@k`` becomes the ``cutoff`` parameter.
    """
    if registry is None:
        import embedlab

        registry = embedlab.registry()
    match = _SYNTAX.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"cannot parse metric {text!r}: write NAME, NAME@CUTOFF or "
                          f"NAME(param=value,...)@CUTOFF, e.g. nDCG@10, AP, P(rel=2)@10. "
                          f"Known measures: {_known(registry)}")
    params = _parse_params(text, match["params"] or "")
    if match["cutoff"] is not None:
        if "cutoff" in params:
            raise ConfigError(f"metric {text!r}: give the cutoff once, either @k or cutoff=k")
        params["cutoff"] = int(match["cutoff"])
    name = match["name"]
    try:
        spec = registry.spec("metric", name)
    except UnknownComponentError:
        same = [n for n in registry.names("metric") if n.lower() == name.lower()]
        hint = f" Did you mean {same[0]}? Names are case-sensitive." if same else ""
        raise ConfigError(f"unknown measure {name!r} in metric {text!r}. Known measures: "
                          f"{_known(registry)}.{hint}") from None
    try:
        return spec.factory(**params)
    except ConfigError as error:
        raise ConfigError(f"metric {text!r}: {error}") from None
