"""The ``dsi`` retriever end to end on a tiny corpus (a tiny random BERT with MiniLM's tokenizer as the
frozen encoder; milliseconds per step): it memorises the corpus, learns queries, resumes a killed
run to the same weights, runs in a Pipeline beside an embedding first stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_dsi import DSIRetriever
from embedlab_dsi.testing import tiny_settings
from embedlab_dsi.training import DSITrainer
from embedlab_train.head_fixtures import private_cache  # noqa: F401 (autouse: a temporary embedlab cache)
from embedlab_train.testing import tiny_bert, topics_dataset

import embedlab
from embedlab.dataset import Queries
from embedlab.pipeline import Pipeline


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden=48)


@pytest.fixture(scope="module")
def topics():
    return topics_dataset()


@pytest.fixture()
def params(tiny_model) -> dict:
    encoder = {"name": "transformers", "model_path": str(tiny_model), "max_length": 32, "num_threads": 1,
               "show_progress": False}
    return tiny_settings(tiny_model, id_encoder=encoder, k=4, c=5)


def hits(retriever: DSIRetriever, queries: Queries, relevant: list[set[str]], depth: int) -> float:
    ranking = retriever.search(queries, k=depth)
    return float(np.mean([bool(set(row.tolist()) & r) for row, r in zip(ranking.doc_ids, relevant)]))


def own_text_queries(topics) -> tuple[Queries, list[set[str]]]:
    ids = topics.corpus.ids.tolist()
    return Queries([f"self-{d}" for d in ids], topics.corpus.documents()), [{d} for d in ids]


@pytest.mark.parametrize("scheme", ["semantic", "naive", "atomic"])
def test_indexing_memorises_every_document_under_each_id_scheme(params, topics, scheme):
    dsi = DSIRetriever(**params, docids=scheme)
    dsi.build(topics.corpus)
    queries, relevant = own_text_queries(topics)
    assert hits(dsi, queries, relevant, 1) >= 0.9  # a document's own text decodes to its own id
    record = dsi.training_record
    assert record["examples"] == {"index": 48} and record["losses"][-1] < 0.2 * record["losses"][0]
    ranking = dsi.search(queries, k=20)
    assert ranking.doc_ids.shape == (48, 10)  # at most beam_size documents, all distinct and real
    for row in ranking.doc_ids.tolist():
        assert len(set(row)) == 10 and set(row) <= set(topics.corpus.ids.tolist())
    assert np.all(np.diff(ranking.scores, axis=1) <= 0) and np.all(ranking.scores <= 0)


def test_an_untrained_model_is_at_chance_so_the_test_above_can_fail(params, topics):
    dsi = DSIRetriever(**{**params, "epochs": 1, "lr": 1e-9})
    dsi.build(topics.corpus)
    queries, relevant = own_text_queries(topics)
    assert hits(dsi, queries, relevant, 1) < 0.2


def test_retrieval_task_teaches_queries_whose_words_do_not_give_the_answer(params, topics):
    train = topics.split("train")
    relevant = [set(train.qrels[q]) for q in train.queries.ids.tolist()]
    indexing_only = DSIRetriever(**params)
    indexing_only.build(topics.corpus, train=train)  # queries=True: this one learns them
    no_queries = DSIRetriever(**params, queries=False)
    no_queries.build(topics.corpus, train=train)
    assert no_queries.training_record["examples"] == {"index": 48}
    assert indexing_only.training_record["examples"] == {"index": 48, "query": 48}
    assert hits(indexing_only, train.queries, relevant, 1) >= 0.9
    assert hits(no_queries, train.queries, relevant, 10) < 0.6


def test_a_killed_run_resumes_to_the_same_weights_and_a_finished_run_is_reused(params, topics, tmp_path, monkeypatch):
    settings = {**params, "epochs": 4, "checkpoint_every": 3, "checkpoint_dir": str(tmp_path / "run")}
    whole = DSIRetriever(**{**settings, "checkpoint_dir": str(tmp_path / "whole")})
    whole.build(topics.corpus)
    original = DSITrainer._step
    calls = {"n": 0}

    def dies_at_step_8(self, rows, negatives):
        calls["n"] += 1
        if calls["n"] == 8:
            raise KeyboardInterrupt
        return original(self, rows, negatives)

    monkeypatch.setattr(DSITrainer, "_step", dies_at_step_8)
    with pytest.raises(KeyboardInterrupt):
        DSIRetriever(**settings).build(topics.corpus)
    monkeypatch.setattr(DSITrainer, "_step", original)
    resumed = DSIRetriever(**settings)
    resumed.build(topics.corpus)
    for name, tensor in whole.model.model.state_dict().items():
        torch.testing.assert_close(resumed.model.model.state_dict()[name], tensor, rtol=0, atol=1e-6)
    assert resumed.training_record["steps"] == whole.training_record["steps"] == 12

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run must be reused")

    monkeypatch.setattr(DSIRetriever, "_run", no_training)
    again = DSIRetriever(**settings)
    again.build(topics.corpus)
    queries, _ = own_text_queries(topics)
    np.testing.assert_array_equal(again.search(queries, 5).doc_ids, resumed.search(queries, 5).doc_ids)


def test_early_stopping_on_held_out_training_queries(params, topics):
    dsi = DSIRetriever(**{**params, "validation_fraction": 0.25, "patience": 2, "epochs": 6})
    dsi.build(topics.corpus, train=topics.split("train"))
    record = dsi.training_record
    assert record["held_out_queries"] == 6 and record["examples"]["query"] == 36  # 18 queries x 2 documents
    assert len(record["validation_hits10"]) == record["epochs_run"] + 1
    assert record["best_evaluation"] == int(np.argmax(record["validation_hits10"]))


def test_runs_in_a_pipeline_beside_an_embedding_first_stage_with_the_same_metrics(params, topics):
    dsi = embedlab.create("retriever", "dsi", **params)
    split = topics.split("train")
    generative = Pipeline(retriever=dsi, name="dsi")
    generative.build(topics.corpus, train=split)
    assert generative.timings.fit_encoder_s > 0 and generative.bytes_per_document > 0
    ranking = generative.search(split.queries, k=10)
    result = embedlab.evaluate(ranking, split.qrels, ["Success@1", "Success@10", "nDCG@10"])
    assert result.aggregates["Success@10"] >= 0.9


def test_clear_errors(params, topics):
    with pytest.raises(embedlab.InvalidInputError, match="call build"):
        DSIRetriever(**params).search(topics.queries, 5)
    with pytest.raises(embedlab.ConfigError):
        DSIRetriever(**params, docids="random")
    with pytest.raises(embedlab.ConfigError, match="heads=5"):
        DSIRetriever(**{**params, "heads": 5}).build(topics.corpus)
    dsi = DSIRetriever(**{**params, "epochs": 1})
    dsi.build(topics.corpus)
    with pytest.raises(embedlab.InvalidInputError, match="filters"):
        dsi.search(topics.queries, 5, filter=np.ones(48, dtype=bool))


def test_save_and_load_search_the_same_and_damage_is_detected(params, topics, tmp_path):
    dsi = DSIRetriever(**{**params, "epochs": 3})
    dsi.build(topics.corpus)
    dsi.save(tmp_path / "dsi")
    loaded = embedlab.load_component(tmp_path / "dsi")
    assert isinstance(loaded, DSIRetriever) and loaded.docids.codes == dsi.docids.codes
    queries, _ = own_text_queries(topics)
    expected = dsi.search(queries, 5)
    found = loaded.search(queries, 5)
    np.testing.assert_array_equal(found.doc_ids, expected.doc_ids)
    np.testing.assert_allclose(found.scores, expected.scores, atol=1e-5)
    weights = tmp_path / "dsi" / "decoder.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(embedlab.StateError):
        DSIRetriever.load(tmp_path / "dsi")
