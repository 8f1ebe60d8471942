"""Seeded synthetic CTR data: Zipfian vocabularies per field and a hidden ground-truth model.

Each field ``f`` draws its values from a Zipf-Mandelbrot law ``p(rank k) ~ (k + 1) ** -zipf`` over
``vocab_sizes[f]`` values (ranks mapped to ids by a seeded permutation, so an id says nothing about
its frequency). ``zipf`` is the skew knob: larger is more skewed (fewer values carry more rows).

The label of a row is Bernoulli(sigmoid(logit)) with the hidden model

    logit = b + sum_f w[x_f] + sum_{(f, g) in pairs} c_fg <u[x_f], u[x_g]> + beta . dense

(first-order weight ``w`` and latent vector ``u`` per feature value, ``c_fg`` per interacting field
pair, ``b`` solved so that the mean click rate is ``ctr``). The true logits are returned too, so
the Bayes-optimal AUC of a sample is known.

Only values that occur in the rows keep an id (ids are renumbered densely per field, as a real
vocabulary only holds observed values).
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy.special import expit

from embedlab.errors import InvalidInputError
from embedlab_tables.data import CTRData

#: Criteo Kaggle's 26 field cardinalities, capped at 40,000 (about 295,000 values in all).
CRITEO_LIKE_VOCABS = (1460, 583, 40000, 30000, 305, 24, 12517, 633, 3, 20000, 5683, 40000, 3194, 27, 14992,
                      35000, 10, 5652, 2173, 4, 38000, 18, 15, 25000, 105, 20000)

_v = attrs.validators


def _positive_ints(_: object, attribute: attrs.Attribute, value: tuple[int, ...]) -> None:
    if not value or any(not isinstance(v, int) or v < 1 for v in value):
        raise ValueError(f"{attribute.name} must be a non-empty list of integers >= 1, got {value!r}")


@attrs.frozen
class SyntheticConfig:
    """Parameters of :func:`generate` (every one changes the data)."""

    rows: int = attrs.field(default=200_000, validator=[_v.instance_of(int), _v.ge(10)])
    vocab_sizes: tuple[int, ...] = attrs.field(default=CRITEO_LIKE_VOCABS, converter=tuple,
                                               validator=_positive_ints)
    zipf: float = attrs.field(default=1.1, converter=float, validator=[_v.gt(0), _v.le(5)])
    n_dense: int = attrs.field(default=13, validator=[_v.instance_of(int), _v.ge(0)])
    latent_dim: int = attrs.field(default=8, validator=[_v.instance_of(int), _v.ge(1)])
    pairs: int = attrs.field(default=40, validator=[_v.instance_of(int), _v.ge(0)])
    first_order_scale: float = attrs.field(default=0.5, converter=float, validator=_v.ge(0))
    interaction_scale: float = attrs.field(default=1.0, converter=float, validator=_v.ge(0))
    dense_scale: float = attrs.field(default=0.3, converter=float, validator=_v.ge(0))
    ctr: float = attrs.field(default=0.25, converter=float, validator=[_v.gt(0), _v.lt(1)])
    seed: int = attrs.field(default=0, validator=[_v.instance_of(int), _v.ge(0)])


@attrs.frozen(eq=False)
class SyntheticCTR:
    """Generated rows, their true logits and the ground truth's parameters' summary."""

    data: CTRData
    logits: np.ndarray
    config: SyntheticConfig
    pairs: tuple[tuple[int, int], ...]

    def bayes_auc(self, rows: np.ndarray | None = None) -> float:
        """AUC of the true click probabilities on ``rows`` (all by default): the best any model can do."""
        from embedlab_tables.metrics import auc

        labels = self.data.labels if rows is None else self.data.labels[rows]
        logits = self.logits if rows is None else self.logits[rows]
        return auc(labels, logits)


def _zipf_probabilities(size: int, exponent: float) -> np.ndarray:
    p = (np.arange(size, dtype=np.float64) + 2.0) ** -exponent
    return p / p.sum()


def _solve_bias(logits: np.ndarray, ctr: float) -> float:
    """Bias b with mean(sigmoid(logits + b)) == ctr (bisection; the mean is monotone in b)."""
    low, high = -30.0, 30.0
    for _ in range(80):
        mid = (low + high) / 2
        if expit(logits + mid).mean() < ctr:
            low = mid
        else:
            high = mid
    return (low + high) / 2


def generate(config: SyntheticConfig | None = None, **params: object) -> SyntheticCTR:
    """Generate a data set (``generate(rows=50_000, zipf=1.4)`` or ``generate(SyntheticConfig(...))``)."""
    if config is None:
        try:
            config = SyntheticConfig(**params)  # type: ignore[arg-type]
        except (TypeError, ValueError) as error:
            raise InvalidInputError(f"synthetic CTR data: {error}") from error
    elif params:
        raise InvalidInputError("pass a SyntheticConfig or keyword parameters, not both")
    c = config
    rng = np.random.default_rng(c.seed)
    n, fields = c.rows, len(c.vocab_sizes)
    ids = np.empty((n, fields), dtype=np.int64)
    first = np.zeros(n)
    latent = np.empty((fields, n, c.latent_dim))
    for f, size in enumerate(c.vocab_sizes):
        ranks = rng.choice(size, size=n, p=_zipf_probabilities(size, c.zipf))
        ids[:, f] = rng.permutation(size)[ranks]
        first += rng.normal(0.0, c.first_order_scale, size)[ids[:, f]]
        latent[f] = rng.normal(0.0, 1.0 / np.sqrt(c.latent_dim), (size, c.latent_dim))[ids[:, f]]
    all_pairs = [(f, g) for f in range(fields) for g in range(f + 1, fields)]
    chosen = rng.choice(len(all_pairs), size=min(c.pairs, len(all_pairs)), replace=False) if all_pairs else []
    pairs = tuple(sorted(all_pairs[i] for i in chosen))
    interactions = np.zeros(n)
    if pairs:
        weights = rng.normal(0.0, c.interaction_scale / np.sqrt(len(pairs)), len(pairs))
        for (f, g), weight in zip(pairs, weights):
            interactions += weight * np.einsum("nk,nk->n", latent[f], latent[g]) * np.sqrt(c.latent_dim)
    dense = rng.lognormal(0.0, 1.0, (n, c.n_dense))
    dense_features = np.log1p(dense).astype(np.float32)
    centred = dense_features - dense_features.mean(axis=0) if c.n_dense else dense_features
    dense_term = centred @ rng.normal(0.0, c.dense_scale, c.n_dense) if c.n_dense else np.zeros(n)
    logits = first + interactions + dense_term
    logits = logits + _solve_bias(logits, c.ctr)
    labels = (rng.random(n) < expit(logits)).astype(np.float32)
    dense_ids, sizes = _compact(ids)
    data = CTRData(dense_ids, dense_features, labels, sizes)
    return SyntheticCTR(data, logits.astype(np.float64), c, pairs)


def _compact(ids: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """Renumber every field's ids densely over the values that occur (order kept)."""
    out = np.empty_like(ids)
    sizes = []
    for f in range(ids.shape[1]):
        values, inverse = np.unique(ids[:, f], return_inverse=True)
        out[:, f] = inverse.reshape(-1)
        sizes.append(len(values))
    return out, tuple(sizes)
