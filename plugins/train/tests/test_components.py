"""Negative samplers, pair filters and the plugin-declared kinds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_train import Mined, PairFilter, TrainingContext, TrainingSet
from embedlab_train.data import epoch_batches

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.testing import registered
from embedlab.training import TrainingData


@pytest.fixture()
def context(dataset, tmp_path):
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
    return TrainingContext(data, 32, torch.device("cpu"), 0, EmbeddingCache(tmp_path))


def test_mined_negatives_come_from_the_first_stage_and_skip_judged_positives(context):
    data = context.data
    top = Mined(first_stage={"encoder": "bm25", "index": "exact"}, count=3, depth=10)
    top.prepare(context)
    negatives = top.sample(context, 0, np.random.default_rng(0))
    assert negatives.shape == (len(data), 3)
    candidates = context.candidates({"encoder": "bm25", "index": "exact"}, 10)
    for e, q in enumerate(data.query.tolist()):
        assert not set(negatives[e].tolist()) & data.judged[q]
        assert negatives[e].tolist() == candidates.unjudged(data, q)[:3].tolist()   # the best unjudged ones
    uniform = Mined(first_stage="bm25", count=2, start=2, depth=10, sampling="uniform")
    uniform.prepare(context)
    epoch0 = uniform.sample(context, 0, np.random.default_rng([0, 0, 1]))
    assert np.array_equal(epoch0, uniform.sample(context, 0, np.random.default_rng([0, 0, 1])))
    assert not np.array_equal(epoch0, uniform.sample(context, 1, np.random.default_rng([0, 1, 1])))
    for e, q in enumerate(data.query.tolist()):
        allowed = set(candidates.unjudged(data, q, start=2).tolist())
        assert set(epoch0[e].tolist()) <= allowed and not set(epoch0[e].tolist()) & data.judged[q]


def test_mined_rejects_bad_ranges_and_too_many_negatives(context):
    with pytest.raises(embedlab.ConfigError, match="start .* must be below depth"):
        Mined(start=5, depth=5)
    with pytest.raises(embedlab.ConfigError, match="first_stage: unknown key"):
        Mined(first_stage={"encoder": "bm25", "indx": "exact"})
    greedy = Mined(first_stage="bm25", count=47)
    greedy.prepare(context)
    with pytest.raises(embedlab.InvalidInputError, match="only 46 documents that are not judged"):
        greedy.sample(context, 0, np.random.default_rng(0))


def test_batches_cover_every_example_once_without_duplicate_queries_or_positives(context):
    data = context.data
    batches = epoch_batches(data, 8, seed=3, epoch=1)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(data)))
    for rows in batches:
        assert len(set(data.query[rows].tolist())) == len(rows) == len(set(data.positive[rows].tolist()))
    assert all(np.array_equal(a, b) for a, b in zip(batches, epoch_batches(data, 8, seed=3, epoch=1)))
    assert any(not np.array_equal(a, b) for a, b in zip(batches, epoch_batches(data, 8, seed=3, epoch=2)))


class DropOddQueries(PairFilter):
    """A third-party style filter: keeps the examples of even query indices."""

    name = "drop-odd"

    def keep(self, context):
        return context.data.query % 2 == 0


def test_a_filter_selects_the_examples_training_sees(fast, dataset):
    from embedlab_train import FineTunedEncoder

    with registered("pair-filter", "drop-odd", DropOddQueries):
        encoder = FineTunedEncoder(**fast, filters=["drop-odd"])
        data = TrainingSet.from_training_data(TrainingData(dataset.corpus, dataset.split("train")))
        encoder.train(data)
    assert encoder.training_record["train_examples"] == len(data) // 2


def test_embedlab_plugins_lists_the_declared_kinds_and_their_components():
    info = {p.name: p for p in embedlab.plugin_host().plugins}["train"]
    assert info.status == "loaded" and sorted(info.kinds) == ["loss", "negatives", "pair-filter", "pooling-head"]
    assert info.components["loss"] == ["infonce", "matryoshka"]
    assert info.components["negatives"] == ["in-batch", "mined"]
    assert info.components["encoder"] == ["finetune", "frozen-head"]
    assert sorted(info.components["pooling-head"]) == ["linear", "mean"]
    assert embedlab.registry().kind("loss").distribution == "embedlab-train"


def test_training_set_keeps_each_pair_grade_through_selection(dataset):
    graded = {q: {d: 2 if d.endswith("a") else 1 for d in docs} for q, docs in dataset.split("train").qrels.items()}
    split = embedlab.Dataset("g", dataset.corpus, dataset.queries, {"train": graded}).split("train")
    data = TrainingSet.from_training_data(TrainingData(dataset.corpus, split))
    expected = [2 if dataset.corpus.ids[p].endswith("a") else 1 for p in data.positive.tolist()]
    assert data.grade.tolist() == expected
    subset = data.select(data.query % 3 == 0)
    assert subset.grade.tolist() == [2 if dataset.corpus.ids[p].endswith("a") else 1 for p in subset.positive.tolist()]
