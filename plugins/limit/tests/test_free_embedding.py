"""The free-embedding optimiser, its measures and the critical-n search."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest
import torch
from embedlab_limit.critical import main, search_critical_n
from embedlab_limit.evaluation import min_row_margin, row_margins, top_k_accuracy
from embedlab_limit.free_embedding import Adam, InfoNCE, Masks, OptimiserConfig, Problem, optimise
from embedlab_limit.relevance import combination_relevance
from embedlab_limit.reporting import write_json

from embedlab.errors import ConfigError, InvalidInputError

FAST = OptimiserConfig(max_steps=4000, patience=300)


def test_combination_relevance_is_limits_dense_pattern():
    matrix = combination_relevance(5, 2)
    assert matrix.shape == (10, 5) and (matrix.sum(1) == 2).all()
    assert matrix[0].tolist() == [True, True, False, False, False]
    assert matrix[-1].tolist() == [False, False, False, True, True]
    assert combination_relevance(46, 2, queries=1000).shape == (1000, 46)
    with pytest.raises(ConfigError, match="C\\(4,2\\) = 6"):
        combination_relevance(4, 2, queries=7)


def test_measures_on_hand_made_scores_with_padding():
    scores = torch.tensor([[[0.9, 0.8, 0.1, 5.0], [0.2, 0.7, 0.6, 5.0]]])  # last document is padding
    relevant = torch.tensor([[[True, True, False, False], [True, True, False, False]]])
    pairs = torch.tensor([[[True, True, True, False]] * 2])
    # query 0 ranks both relevant first; query 1 ranks document 2 above document 0
    assert top_k_accuracy(scores, relevant, pairs).tolist() == pytest.approx([0.75])
    assert row_margins(scores, relevant, pairs)[0].tolist() == pytest.approx([(0.8 - 0.1) / 2, (0.2 - 0.6) / 2])
    assert min_row_margin(scores, relevant, pairs).tolist() == pytest.approx([-0.2])


def test_infonce_equals_the_limit_formula():
    rng = np.random.default_rng(0)
    scores = rng.uniform(-1, 1, size=(6, 5)).astype(np.float32)
    relevance = combination_relevance(5, 2)[:6]
    logits = scores / 0.1
    log_probs = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -(log_probs * relevance).sum() / relevance.sum()
    masks = Masks.of(torch.from_numpy(relevance)[None], torch.ones(1, 6, 5, dtype=torch.bool))
    value = InfoNCE(0.1)(torch.from_numpy(scores)[None], masks, {})
    assert float(value[0]) == pytest.approx(float(expected), rel=1e-5)


def test_adam_matches_torch_adam():
    start = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    ours, theirs = start.clone().requires_grad_(True), start.clone().requires_grad_(True)
    adam, reference = Adam([ours], 0.01), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(25):
        (gradient,) = torch.autograd.grad((ours**3).sum(), [ours])
        adam.step([gradient])
        reference.zero_grad()
        (theirs**3).sum().backward()
        reference.step()
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_solves_an_easy_problem_and_fails_an_impossible_one():
    easy, impossible = Problem(combination_relevance(6, 2), dim=8), Problem(combination_relevance(12, 2), dim=2)
    solved, failed = optimise([easy, impossible], InfoNCE(), FAST, progress=False)
    assert solved.solved and solved.stop_reason == "solved" and solved.best_accuracy == 1.0
    assert solved.best_margin > 0 and solved.steps < FAST.max_steps
    # in 2 dimensions only about 2n of the C(12,2) = 66 pairs can be someone's top 2
    assert not failed.solved and failed.best_accuracy < 0.9 and failed.stop_reason in ("plateau", "max_steps")
    scores = solved.queries @ solved.documents.T
    top2 = np.argsort(-scores, axis=1)[:, :2]
    assert (np.sort(top2, axis=1) == np.argwhere(easy.relevance)[:, 1].reshape(-1, 2)).all()
    assert np.allclose(np.linalg.norm(solved.documents, axis=1), 1.0, atol=1e-5)


def test_batched_problems_follow_their_solo_trajectories():
    config = OptimiserConfig(max_steps=60, patience=10_000, eval_every=1000)
    problems = [Problem(combination_relevance(5, 2), 3, seed=1), Problem(combination_relevance(7, 2), 4, seed=2)]
    together = optimise(problems, InfoNCE(), config, progress=False)
    for problem, joint in zip(problems, together):
        (alone,) = optimise([problem], InfoNCE(), config, progress=False)
        assert joint.steps == alone.steps
        assert np.allclose(joint.queries, alone.queries, atol=1e-4)
        assert np.allclose(joint.documents, alone.documents, atol=1e-4)


def test_seeds_make_runs_repeatable():
    problem = Problem(combination_relevance(8, 2), dim=3, seed=5)
    config = OptimiserConfig(max_steps=300, patience=10_000)
    first, second = (optimise([problem], config=config, progress=False)[0] for _ in range(2))
    assert np.array_equal(first.documents, second.documents) and first.final_loss == second.final_loss
    other = optimise([Problem(problem.relevance, 3, seed=6)], config=config, progress=False)[0]
    assert not np.array_equal(first.documents, other.documents)


def test_problem_validation():
    with pytest.raises(InvalidInputError, match="no relevant document"):
        Problem(np.array([[True, False], [False, False]]), dim=2)
    with pytest.raises(ValueError):
        Problem(combination_relevance(4), dim=0)


def test_critical_search_brackets_the_largest_solved_n():
    result = search_critical_n(2, start=3, window=6, confirm=3, config=FAST, progress=False)
    solved = {e["n"]: e["solved"] for e in result.evaluations()}
    assert result.critical_n is not None and solved[result.critical_n]
    assert not any(solved[n] for n in range(result.critical_n + 1, result.critical_n + 4))
    assert result.critical_n >= 3  # 3 documents, 3 queries: always solvable in 2-d


def test_command_writes_table_json_and_plot(tmp_path, capsys):
    assert main(["--dims", "2", "3", "--start", "3", "--window", "3", "--confirm", "1", "--max-steps", "1500",
                 "--patience", "200", "--output", str(tmp_path), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "critical n" in printed and "wrote" in printed
    data = json.loads((tmp_path / "critical_n.json").read_text())
    assert [r["d"] for r in data["results"]] == [2, 3]
    assert data["optimiser"]["learning_rate"] == 0.01 and data["loss"]["temperature"] == 0.1
    assert (tmp_path / "critical_n.png").read_bytes()[:4] == b"\x89PNG"


def test_results_json_gets_the_users_umask(tmp_path):
    """It was owner-only (tempfile), unlike every other output."""
    previous = os.umask(0o022)
    try:
        path = write_json(tmp_path / "out" / "critical_n.json", {"results": [1]})
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 and json.loads(path.read_text()) == {"results": [1]}
