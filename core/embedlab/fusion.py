"""Hybrid retrieval: fuse the rankings of several first stages into one.

Methods (``w_i`` the weight of first stage ``i``, ``r_i(d)`` the 1-based rank of document ``d`` in
its ranking, ``s_i(d)`` its normalised score; a document a first stage did not return contributes
nothing to that stage's term):

=========== ======================================= =========================================
method      fused score                             weights
=========== ======================================= =========================================
``rrf``     sum_i w_i / (rrf_k + r_i(d))            yes (default 1 each; Cormack et al. 2009)
``combsum`` sum_i s_i(d)                            no (Fox & Shaw 1994)
``combmnz`` |{i : d returned by i}| * sum_i s_i(d)  no (Fox & Shaw 1994)
``linear``  sum_i w_i s_i(d), weights summing to 1  yes (default equal)
=========== ======================================= =========================================

Normalisations (per query, over the documents one first stage returned), named as in ranx where
ranx has them: ``none``, ``min-max`` (s - min) / (max - min), ``max`` s / max, ``sum``
(s - min) / sum(s - min), ``z-score`` (s - mean) / std (ranx's ``zmuv``) and ``rank``
1 - (r - 1) / n. Denominators are floored at 1e-9, as in ranx. Ties in the fused score are broken
by ascending document id.

:class:`FusionRetriever` is itself a :class:`~embedlab.protocols.Retriever`: it builds each first
stage on the corpus and, when given a training split and no fixed weights, tunes the weights of
``rrf``/``linear`` by a grid search over the simplex on that split (never on the evaluated one).
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.components import Component, fingerprint
from embedlab.dataset import Corpus, Queries, Split
from embedlab.errors import ConfigError, InvalidInputError
from embedlab.protocols import ReportsTimings, UsesEmbeddingCache
from embedlab.ranking import MISSING_SCORE, Ranking
from embedlab.retrievers import first_stage, label_of
from embedlab.timings import Timings

METHODS = ("rrf", "combsum", "combmnz", "linear")
WEIGHTED = ("rrf", "linear")
NORMS = ("none", "min-max", "max", "sum", "z-score", "rank")
DEFAULT_NORM = "min-max"
FLOOR = 1e-9


def normalize(scores: np.ndarray, norm: str) -> np.ndarray:
    """Normalise every row's finite scores (a ranking's rows, best first); ``-inf`` padding stays."""
    if norm not in NORMS:
        raise ConfigError(f"unknown normalisation {norm!r}; choose one of {', '.join(NORMS)}")
    scores = np.asarray(scores, dtype=np.float64)
    valid = np.isfinite(scores)
    if norm == "none":
        return scores.copy()
    count = valid.sum(axis=1, keepdims=True)
    safe = np.where(valid, scores, 0.0)
    if norm == "rank":
        out = 1.0 - np.arange(scores.shape[1])[None, :] / np.maximum(count, 1)
    else:
        low = np.where(valid, scores, np.inf).min(axis=1, keepdims=True)
        high = np.where(valid, scores, -np.inf).max(axis=1, keepdims=True)
        if norm == "min-max":
            out = (safe - low) / np.maximum(high - low, FLOOR)
        elif norm == "max":
            out = safe / np.maximum(high, FLOOR)
        elif norm == "sum":
            shifted = np.where(valid, safe - low, 0.0)
            out = shifted / np.maximum(shifted.sum(axis=1, keepdims=True), FLOOR)
        else:  # z-score
            mean = safe.sum(axis=1, keepdims=True) / np.maximum(count, 1)
            var = (np.where(valid, safe - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / np.maximum(count, 1)
            out = (safe - mean) / np.maximum(np.sqrt(var), FLOOR)
    return np.where(valid, out, MISSING_SCORE)


def check_method(method: str, norm: str | None, weights: Sequence[float] | None) -> None:
    """Clear errors for an unknown method or normalisation, or weights a method does not take."""
    if method not in METHODS:
        raise ConfigError(f"unknown fusion method {method!r}; choose one of {', '.join(METHODS)}")
    if norm is not None and norm not in NORMS:
        raise ConfigError(f"unknown normalisation {norm!r}; choose one of {', '.join(NORMS)}")
    if method == "rrf" and norm not in (None, "none"):
        raise ConfigError(f"rrf fuses ranks, so norm={norm!r} has no effect; leave norm unset")
    if weights is not None and method not in WEIGHTED:
        raise ConfigError(f"{method} is unweighted; use method 'linear' (or 'rrf') for weights")


def check_weights(weights: Sequence[float], n: int) -> np.ndarray:
    """Weights as a float array: one per first stage, finite, non-negative, not all zero."""
    values = np.asarray([w for w in weights], dtype=np.float64) if not isinstance(weights, np.ndarray) \
        else weights.astype(np.float64)
    if values.ndim != 1 or values.size != n:
        raise ConfigError(f"fusion has {n} first stages but {values.size} weights")
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ConfigError(f"fusion weights must be finite and >= 0, got {values.tolist()}")
    if not np.any(values > 0):
        raise ConfigError("fusion weights are all zero; at least one first stage needs weight > 0")
    return values


def fuse(rankings: Sequence[Ranking], method: str = "rrf", *, weights: Sequence[float] | None = None,
         norm: str | None = None, rrf_k: float = 60.0, k: int | None = None) -> Ranking:
    """Fuse rankings of the same queries (same ``query_ids`` in the same order) into one.

    ``k`` keeps the best ``k`` fused documents per query (default: every document returned).
    """
    if len(rankings) == 0:
        raise ConfigError("fusion of zero rankings: give at least one first stage")
    check_method(method, norm, weights)
    first = rankings[0]
    for i, ranking in enumerate(rankings[1:], 1):
        if not np.array_equal(ranking.query_ids, first.query_ids):
            raise InvalidInputError(f"fusion: ranking {i} holds other queries (or another order) than ranking 0")
    w = check_weights(weights, len(rankings)) if weights is not None else np.ones(len(rankings))
    if method == "linear":
        w = w / w.sum()
    norm = norm or ("none" if method == "rrf" else DEFAULT_NORM)
    rows, ids, contributions = [], [], []
    for weight, ranking in zip(w, rankings):
        valid = ranking.doc_ids != ""
        if method == "rrf":
            values = 1.0 / (rrf_k + 1.0 + np.arange(ranking.k))[None, :].repeat(len(ranking), axis=0)
        else:
            values = normalize(np.where(valid, ranking.scores, MISSING_SCORE), norm)
        r, c = np.nonzero(valid)
        rows.append(r)
        ids.append(ranking.doc_ids[r, c])
        contributions.append(weight * values[r, c])
    return _combine(first.query_ids, np.concatenate(rows), np.concatenate(ids),
                    np.concatenate(contributions), method, k)


def _combine(query_ids: np.ndarray, rows: np.ndarray, doc_ids: np.ndarray, values: np.ndarray,
             method: str, k: int | None) -> Ranking:
    """Sum the contributions of each (query, document), sort each query, keep the top ``k``."""
    n_queries = len(query_ids)
    codes_of, codes = np.unique(doc_ids, return_inverse=True)  # codes follow the id order
    keys, inverse = np.unique(rows.astype(np.int64) * max(len(codes_of), 1) + codes, return_inverse=True)
    fused = np.bincount(inverse, weights=values, minlength=len(keys))
    if method == "combmnz":
        fused = fused * np.bincount(inverse, minlength=len(keys))
    key_rows, key_codes = np.divmod(keys, max(len(codes_of), 1))
    order = np.lexsort((key_codes, -fused, key_rows))
    key_rows, key_codes, fused = key_rows[order], key_codes[order], fused[order]
    starts = np.searchsorted(key_rows, np.arange(n_queries))
    counts = np.bincount(key_rows, minlength=n_queries)
    width = int(counts.max(initial=0)) if k is None else int(k)
    column = np.arange(len(key_rows)) - starts[key_rows]
    keep = column < width
    out_ids = np.full((n_queries, width), "", dtype=codes_of.dtype if len(codes_of) else "U1")
    out_scores = np.full((n_queries, width), MISSING_SCORE)
    out_ids[key_rows[keep], column[keep]] = codes_of[key_codes[keep]]
    out_scores[key_rows[keep], column[keep]] = fused[keep]
    return Ranking(query_ids, out_ids, out_scores)


def simplex_grid(n: int, step: float) -> list[np.ndarray]:
    """Every weight vector of ``n`` non-negative multiples of ``step`` summing to 1, the most
    balanced first (ties in a grid search then favour equal weights)."""
    parts = int(round(1.0 / step))
    grid = []
    for bars in itertools.combinations(range(parts + n - 1), n - 1):
        edges = (-1, *bars, parts + n - 1)
        grid.append(np.array([edges[i + 1] - edges[i] - 1 for i in range(n)], dtype=np.float64) / parts)
    return sorted(grid, key=lambda w: (float(np.sum((w - 1.0 / n) ** 2)), tuple(-w)))


def _positive_int_or_none(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
        raise ValueError(f"{attribute.name} must be a positive integer, got {value!r}")


def _weights(value: Any) -> tuple[float, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"weights must be a list of numbers, got {value!r}")
    items = list(value)
    if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in items):
        raise ValueError(f"weights must be a list of numbers, got {items!r}")
    if any(not math.isfinite(v) or v < 0 for v in items):
        raise ValueError(f"weights must be finite and >= 0 (no negative weights), got {items!r}")
    if items and not any(v > 0 for v in items):
        raise ValueError("weights are all zero; at least one first stage needs weight > 0")
    return tuple(float(v) for v in items)


def _step(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 0.5 \
            or abs(1.0 / value - round(1.0 / value)) > 1e-9:
        raise ValueError(f"tune_step must be 1/n for an integer n >= 2 (0.1, 0.05, ...), got {value!r}")


@attrs.frozen
class FusionConfig:
    """How a :class:`FusionRetriever` fuses its first stages (see the module docstring)."""

    method: str = attrs.field(default="rrf", validator=attrs.validators.instance_of(str))
    norm: str | None = attrs.field(default=None,
                                   validator=attrs.validators.optional(attrs.validators.instance_of(str)))
    #: One per first stage; None = equal weights, tuned on the training split when one is given.
    weights: tuple[float, ...] | None = attrs.field(default=None, converter=_weights)
    rrf_k: float = attrs.field(default=60.0, validator=[attrs.validators.instance_of((int, float)),
                                                         attrs.validators.ge(0)])
    #: Candidates taken from each first stage; None = the k asked for (must be >= k).
    depth: int | None = attrs.field(default=None, validator=_positive_int_or_none)
    tune_metric: str = attrs.field(default="nDCG@10", validator=attrs.validators.instance_of(str))
    tune_step: float = attrs.field(default=0.1, validator=_step)
    #: Depth of each first stage's ranking of the training queries when tuning.
    tune_depth: int = attrs.field(default=100, validator=_positive_int_or_none)

    def __attrs_post_init__(self) -> None:
        try:
            check_method(self.method, self.norm, self.weights)
        except ConfigError as error:
            raise ValueError(str(error)) from None


class FusionRetriever(Component):
    """Several first stages fused into one ranking; itself a retriever (``retriever`` ``fusion``).

    >>> fused = FusionRetriever(retrievers=[{"label": "bm25", "encoder": "bm25"},
    ...                                     {"label": "minilm", "encoder": "minilm"}],
    ...                         method="rrf")                           # doctest: +SKIP
    """

    kind = "retriever"
    name = "fusion"
    Config = FusionConfig

    def __init__(self, config: FusionConfig | None = None, /, *, retrievers: Sequence[Any] = (),
                 **params: Any) -> None:
        super().__init__(config, **params)
        if isinstance(retrievers, (str, bytes)) or not hasattr(retrievers, "__iter__"):
            raise ConfigError(f"fusion: retrievers must be a list of first stages, got {retrievers!r}")
        stages = [first_stage(spec, label=f"r{i}") for i, spec in enumerate(retrievers)]
        if len(stages) < 2:
            raise ConfigError(f"fusion of {len(stages)} first stage(s): give at least two retrievers")
        if self.config.weights is not None:
            check_weights(self.config.weights, len(stages))
        self.retrievers = stages
        given = [spec.get("label") if isinstance(spec, Mapping) else None for spec in retrievers]
        self.labels = _unique_labels([str(g) if g else label_of(r, f"r{i}")
                                      for i, (g, r) in enumerate(zip(given, stages))])
        self.label = "fusion"
        self.weights_: np.ndarray = np.ones(len(stages)) if self.config.weights is None \
            else np.asarray(self.config.weights)
        self.fitted_params: dict[str, Any] = {}
        self.timings = Timings()
        self._build_timings: list[Timings] = []

    def parts(self) -> dict[str, Any]:
        return dict(zip(self.labels, self.retrievers))

    def fingerprints(self) -> dict[str, str]:
        out = {"retriever": fingerprint(self)}
        for label, retriever in self.parts().items():
            inner = getattr(retriever, "fingerprints", None)
            for stage, value in (inner() if callable(inner) else {"retriever": fingerprint(retriever)}).items():
                out[f"{label}.{stage}"] = value
        return out

    def use_cache(self, cache: Any) -> None:
        for retriever in self.retrievers:
            if isinstance(retriever, UsesEmbeddingCache):
                retriever.use_cache(cache)

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Build every first stage on ``corpus``; tune the weights on ``train`` when given and the
        method is weighted and no weights were fixed."""
        self._build_timings = [_timed_build(r, corpus, train) for r in self.retrievers]
        self.timings = Timings()
        for timings in self._build_timings:
            self.timings.add_first_stage(timings)
        tune = train is not None and self.config.weights is None and self.config.method in WEIGHTED
        self.weights_ = np.ones(len(self.retrievers)) if self.config.weights is None \
            else np.asarray(self.config.weights)
        self.fitted_params = {"weights": self.weights_.tolist(), "tuned": False}
        if tune:
            start = time.perf_counter()
            self._tune(train)
            self.timings.fit_fusion_s += time.perf_counter() - start
        return self.timings

    def _tune(self, train: Split) -> None:
        from embedlab.metrics import evaluate, parse_metric

        metric = str(parse_metric(self.config.tune_metric))
        depth = self.config.tune_depth
        rankings = [r.search(train.queries, depth) for r in self.retrievers]
        best, best_score = None, -math.inf
        for weights in simplex_grid(len(self.retrievers), self.config.tune_step):
            fused = self._fuse(rankings, weights, depth)
            score = evaluate(fused, train.qrels, [metric]).aggregates[metric]
            if score > best_score + 1e-12:
                best, best_score = weights, score
        assert best is not None
        self.weights_ = best
        self.fitted_params = {"weights": best.tolist(), "tuned": True, "tune_split": train.name,
                              "tune_metric": metric, "train_score": best_score}

    def _fuse(self, rankings: Sequence[Ranking], weights: np.ndarray | None, k: int) -> Ranking:
        c = self.config
        return fuse(rankings, c.method, weights=weights if c.method in WEIGHTED else None, norm=c.norm,
                    rrf_k=c.rrf_k, k=k)

    def search(self, queries: Queries, k: int, filter: Any = None) -> Ranking:
        """Each first stage's top ``depth`` (default ``k``), fused, best ``k`` kept."""
        depth = self.config.depth or k
        if depth < k:
            raise InvalidInputError(f"fusion depth {depth} < k {k}: every first stage must return at least "
                                    f"k candidates; raise depth or lower k")
        rankings, timings = [], Timings()
        for retriever, built in zip(self.retrievers, self._build_timings or [Timings()] * len(self.retrievers)):
            start = time.perf_counter()
            rankings.append(retriever.search(queries, depth, filter=filter))
            seconds = time.perf_counter() - start
            stage = attrs.evolve(retriever.timings) if isinstance(retriever, ReportsTimings) \
                else attrs.evolve(built, search_s=seconds)
            timings.add_first_stage(stage)
        start = time.perf_counter()
        fused = self._fuse(rankings, self.weights_, k)
        timings.search_s += time.perf_counter() - start
        timings.fit_fusion_s = self.timings.fit_fusion_s
        self.timings = timings
        return fused

    @property
    def bytes_per_document(self) -> float:
        """Sum over the first stages (each keeps its own index)."""
        return float(sum(getattr(r, "bytes_per_document", math.nan) for r in self.retrievers))


def _timed_build(retriever: Any, corpus: Corpus, train: Split | None) -> Timings:
    start = time.perf_counter()
    retriever.build(corpus, train)
    seconds = time.perf_counter() - start
    if isinstance(retriever, ReportsTimings):
        return attrs.evolve(retriever.timings)
    return Timings(index_s=seconds)


def _unique_labels(labels: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if labels.count(label) == 1 else f"{label}.{seen[label]}")
    return out
