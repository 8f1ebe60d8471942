"""Query drift compensation: exact recovery of a translation, the three modes, pipeline training,
persistence and chaining, the distillation loss, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_qdc import DriftDistillation, QueryDriftCompensation
from embedlab_train import InfoNCE
from embedlab_train.testing import TOPICS, gradients, random_batch, tiny_bert

import embedlab
from embedlab.dataset import Corpus, Dataset, Queries, Split
from embedlab.index import ExactIndex
from embedlab.metrics import evaluate
from embedlab.pipeline import Pipeline
from embedlab.testing import registered
from embedlab.training import TrainingData

OLD = {"name": "drifted", "dim": 16}


def split_of(texts: list[str]) -> TrainingData:
    queries = Queries([f"q{i}" for i in range(len(texts))], texts)
    corpus = Corpus(["d0"], ["a document"])
    return TrainingData(corpus, Split("train", queries, {f"q{i}": {"d0": 1} for i in range(len(texts))}))


def test_a_pure_translation_is_recovered_exactly(drifted):
    with registered("encoder", "drifted", drifted):
        qdc = QueryDriftCompensation(old=OLD, new={**OLD, "shift": 0.7}, train_new=False)
        qdc.fit_queries(split_of([f"training query {i}" for i in range(30)]))
        texts = ["an unseen query", "another one"]
        assert np.allclose(qdc.encode_queries(texts), qdc.old.encode_queries(texts), atol=1e-6)
        assert np.allclose(qdc.encode_documents(texts), qdc.old.encode_documents(texts))
        assert np.isclose(np.linalg.norm(qdc.drift), 0.7, atol=1e-6)


def test_the_three_modes_and_the_drift_formula(drifted):
    train = [f"training query {i}" for i in range(20)]
    with registered("encoder", "drifted", drifted):
        new = {**OLD, "shift": 0.3, "rotate": 0.4, "document_shift": 0.1}
        qdc = QueryDriftCompensation(old=OLD, new=new, train_new=False).fit_queries(split_of(train))
        expected = (qdc.new.encode_queries(train).astype(np.float64) - qdc.old.encode_queries(train)).mean(0)
        assert np.allclose(qdc.drift, expected, atol=1e-6)
        texts = ["q one", "q two"]
        assert np.allclose(qdc.encode_queries(texts), qdc.new.encode_queries(texts) - expected, atol=1e-6)
        raw = QueryDriftCompensation(old=OLD, new=new, train_new=False, compensate=False).fit_queries(split_of(train))
        assert np.allclose(raw.encode_queries(texts), qdc.new.encode_queries(texts))
        reindexed = QueryDriftCompensation(old=OLD, new=new, train_new=False, documents="new")
        reindexed.fit_queries(split_of(train))
        assert np.allclose(reindexed.encode_documents(texts), qdc.new.encode_documents(texts))
        assert np.allclose(reindexed.encode_queries(texts), qdc.new.encode_queries(texts))   # no compensation needed
        normalized = QueryDriftCompensation(old=OLD, new=new, train_new=False, normalize=True)
        normalized.fit_queries(split_of(train))
        assert np.allclose(np.linalg.norm(normalized.encode_queries(texts), axis=1), 1.0, atol=1e-6)


def test_compensation_recovers_retrieval_under_a_translated_query_space(drifted):
    """Documents indexed by the old model; the new one moves queries by a large offset: raw new
    queries lose the old neighbours, compensated ones get them back."""
    docs = [f"document about {t}" for t in TOPICS]
    dataset = Dataset("t", Corpus([f"d{i}" for i in range(len(docs))], docs),
                      Queries([f"q{i}" for i in range(len(docs))], docs),
                      {"test": {f"q{i}": {f"d{i}": 1} for i in range(len(docs))},
                       "train": {f"q{i}": {f"d{i}": 1} for i in range(len(docs))}})
    with registered("encoder", "drifted", drifted):
        scores = {}
        for label, params in {"raw": {"compensate": False}, "qdc": {}}.items():
            encoder = QueryDriftCompensation(old=OLD, new={**OLD, "shift": 3.0, "rotate": 0.05}, train_new=False,
                                             **params)
            pipeline = Pipeline(encoder=encoder, index=ExactIndex(metric="ip"))
            pipeline.build(dataset.corpus, train=dataset.split("train"))
            ranking = pipeline.search(dataset.split("test").queries, k=10)
            scores[label] = evaluate(ranking, dataset.split("test").qrels, ["nDCG@10"]).aggregates["nDCG@10"]
    assert scores["qdc"] > 0.95 and scores["raw"] < 0.6


def test_a_pipeline_fine_tunes_the_new_encoder_saves_loads_and_chains(tmp_path):
    model = tiny_bert(tmp_path / "bert")
    fast = {"name": "finetune", "model_path": str(model), "max_length": 24, "train_batch_size": 8, "lr": 1e-3,
            "epochs": 1, "validation_fraction": 0.0, "checkpoint_dir": None, "num_threads": 1, "show_progress": False}
    old = {"name": "transformers", "model_path": str(model), "max_length": 24, "num_threads": 1, "show_progress": False}
    data = split_of([f"how to {t}" for t in TOPICS])
    qdc = QueryDriftCompensation(old=old, new=fast).fit_queries(data)
    assert qdc.new.trained and qdc.state_fingerprint is not None
    texts = ["parse json text", "sort numbers"]
    expected = qdc.encode_queries(texts)
    qdc.save(tmp_path / "step1")
    loaded = embedlab.load_component(tmp_path / "step1")
    assert np.allclose(loaded.encode_queries(texts), expected, atol=1e-5)
    assert np.allclose(loaded.encode_documents(texts), qdc.encode_documents(texts), atol=1e-6)
    chained = QueryDriftCompensation(old_state=str(tmp_path / "step1"), new={**fast, "seed": 1, "lr": 2e-3})
    chained.fit_queries(split_of([f"what is {t}" for t in TOPICS]))
    step2 = chained.new.encode_queries(texts) - chained.drift - loaded.drift
    assert np.allclose(chained.encode_queries(texts), step2, atol=1e-5)
    assert np.allclose(chained.encode_documents(texts), qdc.encode_documents(texts), atol=1e-6)  # first index kept
    weights = tmp_path / "step1" / "drift.npy"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\1")
    with pytest.raises(embedlab.StateError):
        embedlab.load_component(tmp_path / "step1")


def test_distillation_with_zero_weights_is_infonce_and_with_the_previous_vectors_is_the_formula():
    q, docs, batch = random_batch(b=5, k=1, seed=4)
    plain = InfoNCE()(batch)
    zero = DriftDistillation(query_weight=0.0, document_weight=0.0)(batch)
    assert abs(float(zero.detach()) - float(plain.detach())) < 1e-9
    loss = DriftDistillation(query_weight=0.5, document_weight=2.0)
    rng = np.random.default_rng(0)
    previous_q, previous_d = rng.standard_normal((5, 16)), rng.standard_normal((10, 16))
    loss.use_previous_vectors(previous_q, previous_d)
    cos = torch.nn.functional.cosine_similarity
    expected = plain + 0.5 * (1 - cos(q, torch.from_numpy(previous_q), dim=1)).mean() \
        + 2.0 * (1 - cos(docs, torch.from_numpy(previous_d), dim=1)).mean()
    value = loss(batch)
    assert abs(float(value.detach()) - float(expected.detach())) < 1e-9
    loss.use_previous_vectors(q.detach().numpy(), docs.detach().numpy())      # the model has not moved
    for x, y in zip(gradients(loss(batch), q, docs), gradients(plain, q, docs)):
        assert torch.allclose(x, y, atol=1e-9)


def test_bad_input_is_named(drifted):
    with registered("encoder", "drifted", drifted):
        qdc = QueryDriftCompensation(old=OLD, new=OLD, train_new=False)
        with pytest.raises(embedlab.NotFittedError, match="fit_queries"):
            qdc.encode_queries(["a"])
        with pytest.raises(embedlab.NotFittedError):
            qdc.save("/tmp/never")
        mismatched = QueryDriftCompensation(old=OLD, new={**OLD, "dim": 8}, train_new=False)
        with pytest.raises(embedlab.InvalidInputError, match="8 dimensions, the old one 16"):
            mismatched.fit_queries(split_of(["a", "b"]))
    with pytest.raises(embedlab.ConfigError, match="sparse"):
        QueryDriftCompensation(old="bm25", new="bm25")
    with pytest.raises(embedlab.ConfigError, match="documents"):
        embedlab.create("encoder", "qdc", documents="both")
