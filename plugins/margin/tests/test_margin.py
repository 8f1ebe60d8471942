"""Margins on hand-made embeddings, the sigmoid loss, and the smallest-dimension search."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from embedlab_limit.evaluation import global_margin, zero_margin
from embedlab_limit.free_embedding import InfoNCE, Masks, OptimiserConfig, Problem, optimise
from embedlab_limit.relevance import combination_relevance
from embedlab_margin.margins import (
    global_threshold_margin,
    lift_threshold,
    margin_report,
    retrieval_margin,
    row_margins,
)
from embedlab_margin.min_dimension import log_fit, main, search_min_dimension
from embedlab_margin.sigmoid import SigmoidLoss

from embedlab.errors import InvalidInputError


def unit(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees))]


DOCS = np.array([unit(0), unit(90), unit(180)])


def test_margins_of_hand_made_embeddings():
    queries = np.array([unit(45), unit(135)])
    relevance = np.array([[True, True, False], [False, True, True]])
    s = math.sqrt(0.5)
    assert row_margins(queries, DOCS, relevance) == pytest.approx([s, s])  # (s - (-s)) / 2
    assert retrieval_margin(queries, DOCS, relevance) == pytest.approx(s)
    report = margin_report(queries, DOCS, relevance)
    assert report.separable and report.min_row_margin == pytest.approx(s)


def test_ranking_margin_without_a_zero_threshold_margin():
    documents = np.array([unit(0), unit(30), unit(60)])
    query = np.array([unit(10)])
    relevance = np.array([[True, True, False]])
    cos = [math.cos(math.radians(a)) for a in (10, 20, 50)]
    assert row_margins(query, documents, relevance) == pytest.approx([(cos[1] - cos[2]) / 2])
    # every score is positive, so no threshold at zero separates relevant from other documents
    assert retrieval_margin(query, documents, relevance) == pytest.approx(-cos[2])
    report = margin_report(query, documents, relevance)
    assert report.separable and report.retrieval_margin < 0


def test_one_shared_threshold_lifts_to_a_zero_threshold_one_dimension_up():
    documents = np.array([unit(0), unit(30), unit(60)])
    query = np.array([unit(10)])
    relevance = np.array([[True, True, False]])
    cos = [math.cos(math.radians(a)) for a in (10, 20, 50)]
    margin, threshold = global_threshold_margin(query, documents, relevance)
    assert (margin, threshold) == pytest.approx(((cos[1] - cos[2]) / 2, (cos[1] + cos[2]) / 2))
    lifted_q, lifted_d = lift_threshold(query, documents, threshold)
    assert np.linalg.norm(lifted_q, axis=1) == pytest.approx([1.0]) and lifted_d.shape == (3, 3)
    assert retrieval_margin(lifted_q, lifted_d, relevance) == pytest.approx(margin / math.sqrt(2 * (1 + threshold**2)))
    report = margin_report(query, documents, relevance)
    assert report.min_row_margin >= report.global_margin >= report.retrieval_margin


def test_batched_margins_equal_the_numpy_ones():
    rng = np.random.default_rng(0)
    q = rng.normal(size=(6, 4))
    d = rng.normal(size=(5, 4))
    q, d = q / np.linalg.norm(q, axis=1, keepdims=True), d / np.linalg.norm(d, axis=1, keepdims=True)
    relevance = rng.random((6, 5)) < 0.4
    scores, rel = torch.from_numpy(q @ d.T)[None], torch.from_numpy(relevance)[None]
    pairs = torch.ones_like(rel)
    assert float(global_margin(scores, rel, pairs)[0]) == pytest.approx(global_threshold_margin(q, d, relevance)[0])
    assert float(zero_margin(scores, rel, pairs)[0]) == pytest.approx(retrieval_margin(q, d, relevance))


def test_negative_row_margin_when_a_query_ranks_wrongly():
    queries = np.array([unit(45), unit(170)])
    relevance = np.array([[True, True, False], [True, True, False]])
    margins = row_margins(queries, DOCS, relevance)
    # query 1 scores its relevant documents cos(170°) and cos(80°), the other one cos(10°)
    cos = [math.cos(math.radians(a)) for a in (170, 10)]
    assert margins[0] > 0 and margins[1] == pytest.approx((cos[0] - cos[1]) / 2)
    assert not margin_report(queries, DOCS, relevance).separable


def test_margin_input_errors():
    with pytest.raises(InvalidInputError, match="dimension"):
        row_margins(np.ones((2, 3)), DOCS, np.ones((2, 3), dtype=bool))
    with pytest.raises(InvalidInputError, match="relevance has shape"):
        retrieval_margin(np.ones((2, 2)), DOCS, np.ones((3, 3), dtype=bool))


def test_sigmoid_loss_formula_and_padding():
    scores = torch.tensor([[[0.5, -0.2, 0.9], [0.1, 0.3, -7.0]]])
    relevant = torch.tensor([[[True, False, False], [False, True, False]]])
    pairs = torch.tensor([[[True, True, True], [True, True, False]]])  # one padded pair
    masks = Masks.of(relevant, pairs)
    loss = SigmoidLoss()
    params = {"t": torch.tensor([2.0]), "b": torch.tensor([0.1])}
    softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
    terms = [softplus(-2 * (0.5 - 0.1)), softplus(2 * (-0.2 - 0.1)), softplus(2 * (0.9 - 0.1)),
             softplus(2 * (0.1 - 0.1)), softplus(-2 * (0.3 - 0.1))]
    assert float(loss(scores, masks, params)[0]) == pytest.approx(sum(terms) / 5, rel=1e-5)
    assert {k: v.tolist() for k, v in loss.initial_parameters(2).items()} == {"t": [1.0, 1.0], "b": [0.0, 0.0]}
    fixed = SigmoidLoss(learn_bias=False)
    assert fixed.name == "sigmoid-b0" and list(fixed.initial_parameters(2)) == ["t"]
    at_zero = [softplus(-2 * 0.5), softplus(2 * -0.2), softplus(2 * 0.9), softplus(2 * 0.1), softplus(-2 * 0.3)]
    assert float(fixed(scores, masks, {"t": torch.tensor([2.0])})[0]) == pytest.approx(sum(at_zero) / 5, rel=1e-5)


def test_sigmoid_and_infonce_on_a_tiny_case():
    """Two documents per query, 4 documents: the ideal embedding (relevant score 1, others -1) has
    zero sigmoid loss in the limit t -> inf, while InfoNCE with two positives cannot go below log 2."""
    relevance = torch.from_numpy(combination_relevance(4, 2))[None]
    masks = Masks.of(relevance, torch.ones_like(relevance))
    ideal = relevance.float() * 2 - 1
    sigmoid = [float(SigmoidLoss()(ideal, masks, {"t": torch.tensor([t]), "b": torch.tensor([0.0])})[0])
               for t in (1.0, 10.0, 100.0)]
    assert sigmoid[0] > sigmoid[1] > sigmoid[2] and sigmoid[2] < 1e-6
    infonce = [float(InfoNCE(temperature)(ideal, masks, {})[0]) for temperature in (10.0, 1.0, 0.05)]
    assert infonce[0] > infonce[1] > infonce[2] and infonce[2] == pytest.approx(math.log(2), rel=1e-4)


def test_sigmoid_training_reaches_a_positive_margin_with_learned_temperature():
    problem = Problem(combination_relevance(8, 2), dim=6)
    config = OptimiserConfig(criterion="margin", max_steps=6000, patience=500)
    (outcome,) = optimise([problem], SigmoidLoss(), config, progress=False)
    assert outcome.solved and outcome.stop_reason == "solved"
    assert outcome.parameters["t"] > 1.0  # the temperature was learned
    report = margin_report(outcome.queries, outcome.documents, problem.relevance)
    assert report.min_row_margin > 0 and report.min_row_margin == pytest.approx(outcome.best_margin, abs=1e-5)


def test_zero_bias_sigmoid_reaches_the_papers_margin():
    """With the bias fixed at 0 the loss's threshold is the zero threshold of m^rd, and training
    on 6 documents in 6 dimensions reaches a positive retrieval margin."""
    problem = Problem(combination_relevance(6, 2), dim=6)
    config = OptimiserConfig(criterion="zero-margin", max_steps=4000, patience=400)
    (outcome,) = optimise([problem], SigmoidLoss(learn_bias=False), config, progress=False)
    assert outcome.solved and "b" not in outcome.parameters
    report = margin_report(outcome.queries, outcome.documents, problem.relevance)
    assert report.retrieval_margin > 0 and report.retrieval_margin == pytest.approx(outcome.best_margin, abs=1e-5)


def test_search_finds_the_smallest_solving_dimension():
    config = OptimiserConfig(criterion="margin", max_steps=3000, patience=300)
    result = search_min_dimension(6, "infonce", start=1, window=3, max_dim=8, config=config, progress=False)
    solved = {e["d"]: e["solved"] for e in result.evaluations()}
    assert result.min_dim is not None and solved[result.min_dim]
    assert result.min_dim == 1 or solved[result.min_dim - 1] is False
    assert all(e["retrieval_margin"] is not None for e in result.evaluations() if e["solved"])


def test_log_fit_recovers_a_logarithm():
    class Fake:
        def __init__(self, n, d):
            self.n, self.min_dim = n, d

    a, b = log_fit([Fake(n, 1.0 + 2.0 * math.log(n)) for n in (10, 20, 40)])
    assert (a, b) == pytest.approx((1.0, 2.0))


def test_command_writes_table_json_and_plot(tmp_path, capsys):
    assert main(["--n", "4", "5", "--max-dim", "6", "--max-steps", "1500", "--patience", "200",
                 "--output", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "sigmoid d" in printed and "infonce d" in printed
    data = json.loads((tmp_path / "min_dimension.json").read_text())
    expected = {(loss, n) for loss in ("sigmoid", "infonce") for n in (4, 5)}
    assert {(r["loss"], r["n"]) for r in data["results"]} == expected
    assert data["optimiser"]["criterion"] == "margin" and data["criterion"] == "margin"
    assert (tmp_path / "min_dimension.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["--n", "4", "--max-dim", "4", "--max-steps", "300", "--patience", "100", "--losses", "sigmoid-b0",
                 "--criterion", "zero-margin", "--output", str(tmp_path / "zero"), "--quiet"]) == 0
    data = json.loads((tmp_path / "zero" / "min_dimension.json").read_text())
    assert data["criterion"] == "zero-margin" and data["losses"]["sigmoid-b0"]["learn_bias"] is False
