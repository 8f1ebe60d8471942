"""Node classification, the DeepWalk protocol (Perozzi et al., 2014; its ``scoring.py``):

for every training ratio and every repeat, shuffle the labelled nodes (seeded; the same shuffles for
every method, so methods are compared on identical splits), train one-vs-rest logistic regression
on the first ``ratio`` share of them, and predict for each test node its ``k`` highest-scoring
labels where ``k`` is the number of labels the node truly has (1 for single-label data, where this
is the arg-max). Report Micro- and Macro-F1 of the predicted label sets.

The classifier is scikit-learn's ``LogisticRegression`` with the liblinear solver (what DeepWalk's
and FastRP's scoring scripts ran), imported only here: install it with ``pip install
embedlab[graphs]``. With several values of ``C``, each repeat chooses C by 3-fold cross-validation
on its *training* nodes only (mean of Micro- and Macro-F1), so every method gets the same tuning
budget and the test nodes are never looked at.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from embedlab.errors import ConfigError, InvalidInputError

MEASURES = ("Micro-F1", "Macro-F1")


def _ratios(value: Sequence[float]) -> tuple[float, ...]:
    return tuple(float(v) for v in value)


def _check_ratios(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if not value or any(not 0 < r < 1 for r in value):
        raise ValueError(f"train_ratios must be fractions in (0, 1), got {list(value)}")


def _check_cs(instance: Any, attribute: attrs.Attribute, value: tuple[float, ...]) -> None:
    if not value or any(not np.isfinite(c) or c <= 0 for c in value):
        raise ValueError(f"C must be positive numbers, got {list(value)}")


@attrs.frozen
class ClassificationProtocol:
    """Train ratios, repeats (shuffles), regularisation grid and seed of the protocol."""

    train_ratios: tuple[float, ...] = attrs.field(default=(0.1, 0.5, 0.9), converter=_ratios,
                                                  validator=_check_ratios)
    repeats: int = attrs.field(default=5, validator=attrs.validators.ge(2))
    C: tuple[float, ...] = attrs.field(default=(1.0,), converter=_ratios, validator=_check_cs)
    seed: int = 0


@attrs.frozen(eq=False)
class ClassificationResult:
    """Micro-/Macro-F1 per train ratio and repeat, and the C each repeat used."""

    protocol: ClassificationProtocol
    scores: dict[str, np.ndarray]
    """``{measure: (n_ratios, repeats)}``."""
    chosen_c: np.ndarray
    """``(n_ratios, repeats)``."""

    def mean(self, measure: str, ratio: float) -> float:
        return float(self.scores[measure][self.protocol.train_ratios.index(ratio)].mean())

    def to_json(self) -> dict[str, Any]:
        return {"train_ratios": list(self.protocol.train_ratios), "repeats": self.protocol.repeats,
                "C": list(self.protocol.C), "seed": self.protocol.seed,
                "scores": {m: v.tolist() for m, v in self.scores.items()},
                "chosen_C": self.chosen_c.tolist()}


def _sklearn() -> Any:
    try:
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import f1_score
        from sklearn.multiclass import OneVsRestClassifier
    except ImportError:
        raise ConfigError("node classification needs scikit-learn: pip install 'embedlab[graphs]'") from None
    return LogisticRegression, OneVsRestClassifier, f1_score


def labelled_nodes(labels: sp.csr_matrix) -> np.ndarray:
    """Positions of nodes with at least one label."""
    return np.flatnonzero(np.diff(labels.indptr) > 0)


def top_k_prediction(scores: np.ndarray, counts: np.ndarray) -> sp.csr_matrix:
    """0/1 matrix with each row's ``counts[i]`` highest-scoring labels set (ties: lower label)."""
    order = np.argsort(-scores, axis=1, kind="stable")
    rows = np.repeat(np.arange(len(scores)), counts)
    cols = np.concatenate([order[i, :c] for i, c in enumerate(counts)]) if len(counts) else np.zeros(0, int)
    return sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=scores.shape)


def _f1(truth: sp.csr_matrix, predicted: sp.csr_matrix) -> tuple[float, float]:
    _, _, f1_score = _sklearn()
    return (float(f1_score(truth, predicted, average="micro", zero_division=0)),
            float(f1_score(truth, predicted, average="macro", zero_division=0)))


def _fit_predict(x_train: np.ndarray, y_train: sp.csr_matrix, x_test: np.ndarray, y_test: sp.csr_matrix,
                 c: float) -> tuple[float, float]:
    import warnings

    LogisticRegression, OneVsRestClassifier, _ = _sklearn()
    model = OneVsRestClassifier(LogisticRegression(C=c, solver="liblinear"))
    with warnings.catch_warnings():  # a label absent from a small training share is expected
        warnings.simplefilter("ignore", UserWarning)
        model.fit(x_train, y_train.toarray())
    scores = model.predict_proba(x_test)
    counts = np.diff(y_test.indptr)
    return _f1(y_test, top_k_prediction(scores, counts))


def _choose_c(x: np.ndarray, y: sp.csr_matrix, cs: Sequence[float], rng: np.random.Generator) -> float:
    if len(cs) == 1:
        return float(cs[0])
    folds = np.array_split(rng.permutation(len(x)), 3)
    best, best_score = float(cs[0]), -np.inf
    for c in cs:
        fold_scores = []
        for i, held in enumerate(folds):
            train = np.concatenate([f for j, f in enumerate(folds) if j != i])
            fold_scores.append(np.mean(_fit_predict(x[train], y[train], x[held], y[held], c)))
        if np.mean(fold_scores) > best_score:
            best, best_score = float(c), float(np.mean(fold_scores))
    return best


def classify_nodes(vectors: np.ndarray, labels: sp.csr_matrix, protocol: ClassificationProtocol | None = None,
                   *, progress: bool = False, desc: str = "classify") -> ClassificationResult:
    """Run the protocol on node ``vectors`` (rows aligned with ``labels``); nodes without labels
    take no part."""
    protocol = protocol or ClassificationProtocol()
    x = np.asarray(vectors, dtype=np.float64)
    labels = sp.csr_matrix(labels)
    if x.ndim != 2 or x.shape[0] != labels.shape[0]:
        raise InvalidInputError(f"node classification: {x.shape} vectors for {labels.shape[0]} labelled rows")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("node classification: vectors contain NaN or infinity")
    nodes = labelled_nodes(labels)
    if nodes.size < 10:
        raise InvalidInputError(f"node classification: {nodes.size} labelled nodes; at least 10 needed")
    x, y = x[nodes], labels[nodes]
    shape = (len(protocol.train_ratios), protocol.repeats)
    scores = {m: np.zeros(shape) for m in MEASURES}
    chosen = np.zeros(shape)
    steps = tqdm(total=shape[0] * shape[1], desc=desc, unit="split", disable=not progress, leave=False)
    for r in range(protocol.repeats):
        rng = np.random.default_rng([protocol.seed, r])
        order = rng.permutation(len(nodes))
        for i, ratio in enumerate(protocol.train_ratios):
            cut = min(max(int(round(ratio * len(nodes))), 1), len(nodes) - 1)
            train, test = order[:cut], order[cut:]
            c = _choose_c(x[train], y[train], protocol.C, np.random.default_rng([protocol.seed, r, i]))
            micro, macro = _fit_predict(x[train], y[train], x[test], y[test], c)
            scores["Micro-F1"][i, r], scores["Macro-F1"][i, r], chosen[i, r] = micro, macro, c
            steps.update()
    steps.close()
    return ClassificationResult(protocol, scores, chosen)
