"""The ``cosine-adapter`` reranker on a 300-document python-stdlib slice with MiniLM."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_cosine_adapter import CosineAdapter, judge, sweep
from embedlab_cosine_adapter import training as training_module
from scipy.stats import kendalltau

import embedlab
from embedlab import Ranking, Split
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError, StateError


def test_registered_and_validated(make):
    assert isinstance(make(), CosineAdapter)
    for bad in ({"family": "cubic"}, {"threshold": 1.5}, {"hidden": 0}, {"validation_fraction": 1.0},
                {"seed": True}):
        with pytest.raises(ConfigError):
            make(**bad)


def test_order_inside_the_kept_set_is_the_cosine_order(fitted, dataset, test_run):
    ranking, embeddings = test_run
    probabilities = fitted.probabilities(ranking, embeddings)
    for row in range(len(ranking)):
        tau, _ = kendalltau(ranking.scores[row], probabilities[row])
        assert tau == pytest.approx(1.0)
    out = fitted.rerank(ranking, dataset.split("test").queries, dataset.corpus)
    kept_any = False
    for row in range(len(ranking)):
        kept = out.doc_ids[row][out.doc_ids[row] != ""]
        assert kept.tolist() == ranking.doc_ids[row][:kept.size].tolist()  # a prefix, same order
        assert (out.doc_ids[row][kept.size:] == "").all() and np.isneginf(out.scores[row][kept.size:]).all()
        if kept.size >= 2:
            kept_any = True
            tau, _ = kendalltau(ranking.scores[row][:kept.size], out.scores[row][:kept.size])
            assert tau == pytest.approx(1.0)
    assert kept_any


def test_threshold_cuts_exactly_below_tau(make, fitted, test_run):
    ranking, embeddings = test_run
    probabilities = fitted.probabilities(ranking, embeddings)
    assert 0 < fitted.threshold < 1
    out = fitted.filter(ranking, embeddings)
    np.testing.assert_array_equal(out.doc_ids != "", probabilities >= fitted.threshold)
    np.testing.assert_array_equal(np.where(out.doc_ids != "", out.scores, 0),
                                  np.where(out.doc_ids != "", probabilities, 0))
    sizes = []
    for tau in (0.01, 0.2, 0.6, 0.99):
        forced = make(threshold=tau)
        forced.weights, forced.cosine_mean, forced.cosine_std = fitted.weights, fitted.cosine_mean, fitted.cosine_std
        sizes.append(int((forced.filter(ranking, embeddings).doc_ids != "").sum()))
    assert sizes == sorted(sizes, reverse=True) and sizes[0] > sizes[-1]


def test_probabilities_are_calibrated_better_than_the_prior(fitted, train_run, dataset):
    """Held-out-free sanity: on the training queries, relevant candidates get higher probabilities."""
    ranking, embeddings = train_run
    labels = judge(ranking, dataset.split("train").qrels).labels
    probabilities = fitted.probabilities(ranking, embeddings)
    assert probabilities[labels].mean() > 2 * probabilities[~labels & (ranking.doc_ids != "")].mean()


def test_loss_decreases_and_training_stops(fitted):
    history = fitted.history
    assert min(history["held_out"]) < history["initial_held_out"][0]
    assert history["train"][-1] < history["train"][0]
    assert len(history["held_out"]) <= fitted.config.epochs


def test_fit_is_repeatable_and_seeded(make, dataset, train_run):
    ranking, embeddings = train_run
    first = make(seed=3).fit(dataset, ranking, query_embeddings=embeddings)
    again = make(seed=3).fit(dataset, ranking, query_embeddings=embeddings)
    other = make(seed=4).fit(dataset, ranking, query_embeddings=embeddings)
    for name in first.weights:
        np.testing.assert_array_equal(first.weights[name], again.weights[name])
    assert first.fitted_threshold == again.fitted_threshold and first.history == again.history
    assert not np.array_equal(first.weights["w1"], other.weights["w1"])


def test_save_load_reproduces_probabilities_exactly(make, fitted, test_run, tmp_path):
    ranking, embeddings = test_run
    fitted.save(tmp_path / "adapter")
    loaded = embedlab.load_component(tmp_path / "adapter")
    assert isinstance(loaded, CosineAdapter) and loaded.config == fitted.config
    np.testing.assert_array_equal(loaded.probabilities(ranking, embeddings), fitted.probabilities(ranking, embeddings))
    assert loaded.threshold == fitted.threshold
    with pytest.raises(StateError, match="not an embedlab state"):
        CosineAdapter.load(tmp_path / "missing")
    with pytest.raises(NotFittedError):
        make().save(tmp_path / "unfitted")


def test_missing_documents_are_a_clear_error(fitted, dataset, test_run):
    ranking, _ = test_run
    doc_ids = ranking.doc_ids.copy()
    doc_ids[0, 1] = "not-a-document"
    bad = Ranking(ranking.query_ids, doc_ids, ranking.scores)
    with pytest.raises(InvalidInputError, match="not in the corpus"):
        fitted.rerank(bad, dataset.split("test").queries, dataset.corpus)


def test_scores_that_are_not_cosines_are_rejected(fitted, test_run):
    ranking, embeddings = test_run
    with pytest.raises(InvalidInputError, match="raw cosines"):
        fitted.filter(Ranking(ranking.query_ids, ranking.doc_ids, ranking.scores * 10), embeddings)
    with pytest.raises(InvalidInputError, match="not sorted"):
        fitted.filter(Ranking(ranking.query_ids, ranking.doc_ids, ranking.scores[:, ::-1]), embeddings)
    with pytest.raises(InvalidInputError, match="query embeddings"):
        fitted.filter(ranking, embeddings[:-1])


def test_training_without_qrels_is_a_clear_error(make, dataset, train_run):
    ranking, embeddings = train_run
    part = dataset.split("train")
    with pytest.raises(InvalidInputError, match="no qrels"):
        make().fit(Split("unjudged", part.queries, {q: {} for q in part.qrels}), ranking,
                   query_embeddings=embeddings)
    with pytest.raises(InvalidInputError, match="has no split"):
        make().fit(dataset, ranking, split="validation", query_embeddings=embeddings)
    with pytest.raises(InvalidInputError, match="none of the"):
        make().fit(Split("other", part.queries, {"unknown-query": {"x": 1}}), ranking,
                   query_embeddings=embeddings)
    with pytest.raises(NotFittedError):
        make().filter(ranking, embeddings)


def test_ctrl_c_leaves_the_adapter_unchanged(make, fitted, dataset, train_run, monkeypatch):
    ranking, embeddings = train_run
    adapter = make(seed=7).fit(dataset, ranking, query_embeddings=embeddings)
    before = {k: v.copy() for k, v in adapter.weights.items()}
    calls = {"n": 0}
    real = training_module.bce

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training_module, "bce", interrupted)
    with pytest.raises(KeyboardInterrupt):
        adapter.fit(dataset, ranking, query_embeddings=embeddings)
    assert all(np.array_equal(before[k], adapter.weights[k]) for k in before)


def test_target_recall_objective_reaches_the_recall_on_held_out_queries(make, dataset, train_run):
    ranking, embeddings = train_run
    adapter = make(target_recall=0.9).fit(dataset, ranking, query_embeddings=embeddings)
    f1 = make().fit(dataset, ranking, query_embeddings=embeddings)
    assert adapter.fitted_threshold <= f1.fitted_threshold  # recall 0.9 needs a lower cut than max F1
    curve = sweep(adapter.probabilities(ranking, embeddings), judge(ranking, dataset.split("train").qrels),
                  thresholds=np.array([adapter.fitted_threshold]))
    assert curve.recall[0] >= 0.8  # on all train queries (the held-out 20% reach 0.9 by construction)


def test_a_pipeline_with_a_training_split_fits_it_on_the_first_stage(make, dataset, cache, fitted, test_run):
    """How a TOML pipeline trains it (``[dataset] train_split``): ``fit_queries`` on the pipeline's
    first-stage ranking of the training queries gives the adapter ``fit(dataset)`` gives."""
    pipeline = embedlab.Pipeline(encoder=fitted.encoder,
                                 index=embedlab.create("index", "exact", metric="cosine"),
                                 reranker=make(), cache=cache, train_depth=fitted.config.candidates)
    pipeline.build(dataset.corpus, train=dataset.split("train"))
    ranking, _ = test_run
    queries = dataset.split("test").queries
    out = pipeline.reranker.rerank(ranking, queries, dataset.corpus)
    expected = fitted.rerank(ranking, queries, dataset.corpus)  # same seed and data: same training
    assert out.doc_ids.tolist() == expected.doc_ids.tolist()
    np.testing.assert_allclose(out.scores, expected.scores, rtol=1e-5)
    with pytest.raises(NotFittedError):
        make().rerank(ranking, queries, dataset.corpus)
