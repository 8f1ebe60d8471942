"""Set measures, cuts and threshold choice on hand-checked rankings."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_cosine_adapter import (
    choose_threshold,
    cosine_threshold,
    cut,
    judge,
    rank_scores,
    sweep,
    top_k_cutoff,
)

import embedlab
from embedlab import Ranking
from embedlab.errors import ConfigError, InvalidInputError

RANKING = Ranking(["q1", "q2", "q3"],
                  [["a", "b", "c", "d"], ["e", "f", "", ""], ["a", "g", "h", "i"]],
                  [[0.9, 0.8, 0.5, 0.1], [0.7, 0.6, -np.inf, -np.inf], [0.4, 0.3, 0.2, 0.1]])
QRELS = {"q1": {"a": 1, "c": 2, "z": 1}, "q2": {"f": 1, "e": 0}, "q3": {"i": 1}, "q4": {"x": 1}}


def test_set_measures_match_hand_computed_values():
    kept = cosine_threshold(RANKING, 0.55)  # q1: a, b ; q2: e, f ; q3: nothing ; q4: absent
    result = embedlab.evaluate(kept, QRELS, ["SetP", "SetR", "SetF1", "SetSize", "SetP(rel=2)"])
    per_query = {m: result.query_values(m) for m in result.per_query}
    assert per_query["SetSize"] == {"q1": 2.0, "q2": 2.0, "q3": 0.0, "q4": 0.0}
    assert per_query["SetP"] == {"q1": 0.5, "q2": 0.5, "q3": 0.0, "q4": 0.0}
    assert per_query["SetR"] == pytest.approx({"q1": 1 / 3, "q2": 1.0, "q3": 0.0, "q4": 0.0})
    assert per_query["SetF1"] == pytest.approx({"q1": 0.4, "q2": 2 / 3, "q3": 0.0, "q4": 0.0})
    assert per_query["SetP(rel=2)"]["q1"] == 0.0
    assert result.aggregates["SetSize"] == 1.0


def test_set_measures_parse_and_print():
    assert str(embedlab.parse_metric("SetP(rel=2)@5")) == "SetP(rel=2)@5"
    assert str(embedlab.parse_metric("SetF1")) == "SetF1"
    with pytest.raises(ConfigError):
        embedlab.parse_metric("SetSize(rel=2)")


def test_cuts_keep_shape_and_order():
    top = top_k_cutoff(RANKING, 1)
    assert top.doc_ids.tolist() == [["a", "", "", ""], ["e", "", "", ""], ["a", "", "", ""]]
    assert np.isneginf(top.scores[:, 1:]).all()
    assert cut(RANKING, np.ones(RANKING.doc_ids.shape, bool)).doc_ids.tolist() == RANKING.doc_ids.tolist()
    thresholded = rank_scores(RANKING) >= 1 - 3  # the top-K cutoff as a threshold on -rank
    assert cut(RANKING, thresholded).doc_ids.tolist() == top_k_cutoff(RANKING, 3).doc_ids.tolist()
    with pytest.raises(InvalidInputError, match="k must be"):
        top_k_cutoff(RANKING, -1)


def test_sweep_agrees_with_the_measures():
    ranked = Ranking(RANKING.query_ids, RANKING.doc_ids, RANKING.scores)
    judged = judge(ranked, QRELS)
    assert judged.n_relevant.tolist() == [3, 1, 1]
    curve = sweep(ranked.scores, judged)
    for t, p, r, f, size, pooled in zip(curve.thresholds, curve.precision, curve.recall, curve.f1, curve.size,
                                        curve.pooled):
        qrels = {q: QRELS[q] for q in ("q1", "q2", "q3")}
        kept = cosine_threshold(ranked, t)
        assert pooled == judge(kept, qrels).labels.sum() / (kept.doc_ids != "").sum()
        values = embedlab.evaluate(kept, qrels, ["SetP", "SetR", "SetF1", "SetSize"])
        assert (p, r, f, size) == pytest.approx(tuple(values.aggregates[m] for m in
                                                      ("SetP", "SetR", "SetF1", "SetSize")))


def test_choose_threshold_objectives():
    judged = judge(RANKING, QRELS)
    curve = sweep(RANKING.scores, judged)
    best = choose_threshold(RANKING.scores, judged)
    assert curve.f1[curve.thresholds == best][0] == curve.f1.max()
    for target in (0.3, 0.6, 0.85):
        t = choose_threshold(RANKING.scores, judged, target_recall=target)
        assert curve.recall[curve.thresholds == t][0] >= target - 1e-12
        higher = curve.thresholds > t
        assert (curve.recall[higher] < target).all()  # the largest threshold that reaches it
    # q1's "z" was never retrieved: recall 1 is out of reach, the lowest threshold keeps everything
    assert choose_threshold(RANKING.scores, judged, target_recall=1.0) == curve.thresholds.min()
