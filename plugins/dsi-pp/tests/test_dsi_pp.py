"""DSI++ continual indexing: plain continued training forgets the first corpus; replay keeps it."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_dsi.testing import tiny_settings
from embedlab_dsi_pp import ContinualScores, DSIPPRetriever
from embedlab_train.head_fixtures import private_cache  # noqa: F401 (autouse: a temporary embedlab cache)
from embedlab_train.testing import tiny_bert, topics_dataset

import embedlab
from embedlab.dataset import Corpus, Queries


@pytest.fixture(scope="module")
def params(tmp_path_factory) -> dict:
    return tiny_settings(tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden=48), increment_epochs=40)


@pytest.fixture(scope="module")
def halves() -> tuple[Corpus, Corpus]:
    corpus = topics_dataset().corpus
    docs = corpus.documents()
    return Corpus(corpus.ids[:24], docs[:24]), Corpus(corpus.ids[24:], docs[24:])


def memorised(retriever: DSIPPRetriever, corpus: Corpus) -> float:
    """Share of documents whose own text decodes to their own id (indexing accuracy)."""
    found = retriever.search(Queries([f"s{d}" for d in corpus.ids.tolist()], corpus.documents()), 1)
    return float(np.mean(found.doc_ids[:, 0] == corpus.ids))


def test_continual_indexing_forgets_without_replay_and_replay_reduces_it(params, halves):
    first, second = halves
    retained = {}
    for replay in ("none", "pseudo-queries", "indexing"):
        dsi = embedlab.create("retriever", "dsi-pp", **params, replay=replay)
        dsi.build(first)
        assert memorised(dsi, first) >= 0.9
        old_ids = dsi.docids.codes
        dsi.add(second)
        assert dsi.docids.codes[:24] == old_ids and len(dsi.docids) == 48  # old documents keep their ids
        assert memorised(dsi, second) >= 0.9                             # the new ones are learned
        assert dsi.increments == [24, 24]
        retained[replay] = memorised(dsi, first)
        kinds = dsi.training_record["examples"]
        assert kinds.get("replay", 0) == (0 if replay == "none" else 24) and kinds["index"] == 24
    assert retained["none"] < 0.3                          # catastrophic forgetting of the first corpus
    assert retained["pseudo-queries"] > retained["none"] + 0.4
    assert retained["indexing"] >= 0.9


def test_capacity_ids_and_errors(params, halves):
    first, second = halves
    dsi = DSIPPRetriever(**{**params, "epochs": 1, "increment_epochs": 1}, docids="naive", capacity=30)
    dsi.build(first)
    assert dsi.docids.codes[:3] == ((0, 0), (0, 1), (0, 2)) and dsi.docids.vocab == 10
    with pytest.raises(embedlab.InvalidInputError, match="capacity 30"):
        dsi.add(second)
    with pytest.raises(embedlab.InvalidInputError, match="already indexed"):
        dsi.add(first)
    with pytest.raises(embedlab.ConfigError):
        DSIPPRetriever(**params, docids="semantic")
    with pytest.raises(embedlab.InvalidInputError, match="build"):
        DSIPPRetriever(**params).add(first)


def test_continual_measures():
    scores = ContinualScores([[0.9], [0.5, 0.8], [0.6, 0.4, 0.7]])
    assert scores.average(2) == pytest.approx(0.5667, abs=1e-4)
    assert scores.learning_accuracy(2) == pytest.approx(0.8)
    assert scores.forgetting(1) == pytest.approx(0.4)
    assert scores.forgetting(2) == pytest.approx(((0.9 - 0.6) + (0.8 - 0.4)) / 2)
    with pytest.raises(ValueError, match="step 1 needs 2"):
        ContinualScores([[0.9], [0.5]])
