"""Measures written by a third party against the documented ``Measure`` base class: a vectorised
``Judged@k`` on the judged mask, and a ``bpref`` that overrides ``per_query``; both checked against
trec_eval (pytrec_eval-terrier) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import pytrec_eval

import embedlab
from embedlab import _builtin
from embedlab.metrics import evaluate
from embedlab.metrics.measures import Measure
from embedlab.plugins import PluginHost

MEASURES = """
import attrs
import numpy as np

import embedlab
from embedlab.metrics.compute import prepare
from embedlab.metrics.measures import CutoffConfig, Measure, RelevanceConfig

EMBEDLAB_API_VERSION = "1.1"


class Judged(Measure):
    '''Share of the top k that has a relevance judgment (any grade), divided by k as ir_measures does.'''

    name = "Judged"
    cutoff_required = True

    def compute(self, judged):
        top = judged.judged[:, :self.cutoff] & judged.retrieved[:, :self.cutoff]
        return top.sum(axis=1) / self.cutoff


class Bpref(Measure):
    '''trec_eval's bpref, written per query: judged non-relevant documents above each relevant one.'''

    name = "Bpref"
    Config = RelevanceConfig

    def per_query(self, ranking, qrels):
        arrays = prepare(ranking, qrels)
        values = {}
        for row, qid in enumerate(arrays.query_ids.tolist()):
            relevant = int((arrays.ideal[row] >= self.config.rel).sum())
            nonrelevant = int(((arrays.ideal[row] < self.config.rel)
                               & (arrays.ideal[row] > np.iinfo(np.int64).min)).sum())
            above, total = 0, 0.0
            for grade, judged, retrieved in zip(arrays.grades[row], arrays.judged[row], arrays.retrieved[row]):
                if not (judged and retrieved):
                    continue
                if grade >= self.config.rel:
                    total += 1.0 - min(above, relevant) / min(relevant, nonrelevant) if above else 1.0
                else:
                    above += 1
            values[qid] = total / relevant if relevant else 0.0
        return values


@embedlab.hookimpl
def embedlab_register(registry):
    registry.add("metric", "Judged", Judged)
    registry.add("metric", "Bpref", Bpref)
"""


@pytest.fixture
def registry(fake_plugin):
    fake_plugin("judged", MEASURES)
    host = PluginHost()
    host.load_plugin(_builtin, "embedlab", "embedlab", "0")
    host.load_entry_points()
    info = next(p for p in host.plugins if p.name == "judged")
    assert info.status == "loaded", info.error
    return host.registry


def random_case(rng: np.random.Generator, n_queries: int = 20) -> tuple[dict, dict]:
    """Sparse judgments (grades 0..3), runs with ties and many unjudged documents, one empty run."""
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(n_queries):
        judged = rng.choice(docs, size=int(rng.integers(1, 20)), replace=False)
        qrels[f"q{q}"] = {str(d): int(g) for d, g in zip(judged, rng.choice([0, 0, 1, 2, 3], size=judged.size))}
        retrieved = rng.choice(docs, size=int(rng.integers(0 if q == 0 else 1, 40)), replace=False)
        run[f"q{q}"] = {str(d): float(s) for d, s in zip(retrieved, rng.integers(0, 8, size=retrieved.size) / 4)}
    return qrels, run


def trec_top(docs: dict[str, float], k: int) -> dict[str, float]:
    order = sorted(docs.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    return dict(order[:k])


def test_judged_at_k_uses_the_judged_mask_and_matches_trec_eval(registry):
    rng = np.random.default_rng(11)
    for _ in range(5):
        qrels, run = random_case(rng)
        ranking = embedlab.Ranking.from_dict(run)
        for k in (1, 5, 10, 30):
            ours = evaluate(ranking, qrels, [f"Judged@{k}"], registry=registry).query_values(f"Judged@{k}")
            top = {q: trec_top(docs, k) for q, docs in run.items()}
            found = pytrec_eval.RelevanceEvaluator(qrels, {"num_rel_ret", "num_nonrel_judged_ret"}).evaluate(top)
            expected = {q: (found[q]["num_rel_ret"] + found[q]["num_nonrel_judged_ret"]) / k if q in found else 0.0
                        for q in qrels}
            assert ours == pytest.approx(expected, abs=1e-12), k


def test_judged_at_k_by_hand_unjudged_is_not_grade_zero(registry):
    qrels = {"q": {"a": 0, "b": 1}}
    ranking = embedlab.Ranking.from_dict({"q": {"a": 3.0, "x": 2.0, "b": 1.0, "y": 0.5}})
    result = evaluate(ranking, qrels, ["Judged@2", "Judged@4", "P@4"], registry=registry)
    assert result["Judged@2"] == 0.5  # a judged (grade 0), x unjudged
    assert result["Judged@4"] == 0.5  # a and b judged of four
    assert result["P@4"] == 0.25      # the grade-0 and unjudged documents alike are not relevant


@pytest.mark.parametrize("rel", [1, 2])
def test_an_overridden_per_query_is_what_evaluate_uses_and_matches_trec_eval_bpref(registry, rel):
    rng = np.random.default_rng(5)
    for _ in range(5):
        qrels, run = random_case(rng)
        name = "Bpref" if rel == 1 else f"Bpref(rel={rel})"
        ours = evaluate(embedlab.Ranking.from_dict(run), qrels, [name], registry=registry).query_values(name)
        found = pytrec_eval.RelevanceEvaluator(qrels, {"bpref"}, relevance_level=rel).evaluate(run)
        expected = {q: found[q]["bpref"] if q in found else 0.0 for q in qrels}
        assert ours == pytest.approx(expected, abs=1e-12)


def test_a_measure_implementing_neither_method_is_refused():
    class Nothing(Measure):
        name = "Nothing"

    with pytest.raises(TypeError, match="implements neither compute"):
        Nothing()


def test_a_compute_of_the_wrong_shape_is_an_error(registry):
    class Scalar(Measure):
        name = "Scalar"

        def compute(self, judged):
            return np.float64(1.0)

    with pytest.raises(embedlab.InvalidInputError, match="compute\\(\\) returned shape"):
        evaluate(embedlab.Ranking.from_dict({"q": {"a": 1.0}}), {"q": {"a": 1}}, [Scalar()])
