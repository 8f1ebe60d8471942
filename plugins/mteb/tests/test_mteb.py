"""An embedlab pipeline evaluated by MTEB v2 on a task built offline from local data."""

from __future__ import annotations

from pathlib import Path

import pytest
from embedlab_mteb import MTEBSearch, local_retrieval_task
from mteb.models.models_protocols import SearchProtocol

import embedlab
from embedlab.datasets.beir import load_beir

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="module")
def adi():
    return load_beir(DATA / "adi" / "beir")


def test_mteb_scores_an_embedlab_pipeline_as_embedlab_does(adi):
    pipeline = embedlab.Pipeline.from_names(retrievers=[{"encoder": {"name": "hashing", "dim": 256}},
                                                        {"encoder": {"name": "hashing", "dim": 64, "seed": 3}}],
                                            fusion={"method": "rrf"})
    model = MTEBSearch(pipeline, name="embedlab/hashing-rrf")
    assert isinstance(model, SearchProtocol) and model.mteb_model_meta.name == "embedlab/hashing-rrf"
    task = local_retrieval_task(adi, "test")
    scores = task.evaluate(model, "test", encode_kwargs={})["default"]
    split = adi.split("test")
    ours = embedlab.evaluate(pipeline.search(split.queries, k=100), split.qrels, ["nDCG@10", "R@100"]).aggregates
    assert scores["ndcg_at_10"] == pytest.approx(ours["nDCG@10"], abs=1e-5)
    assert scores["recall_at_100"] == pytest.approx(ours["R@100"], abs=1e-5)
    assert scores["main_score"] == scores["ndcg_at_10"] > 0.05


def test_an_encoder_runs_through_the_exact_index_and_bad_input_is_refused(adi):
    model = MTEBSearch.from_encoder({"name": "hashing", "dim": 128})
    scores = local_retrieval_task(adi).evaluate(model, "test", encode_kwargs={})["default"]
    assert 0.0 < scores["ndcg_at_10"] <= 1.0
    with pytest.raises(embedlab.ConfigError, match="wraps an embedlab Pipeline"):
        MTEBSearch(object())
    with pytest.raises(embedlab.ConfigError, match="reranking tasks"):
        model.search({"id": ["q"], "text": ["x"]}, top_k=5, top_ranked={"q": ["d"]})


def test_mteb_scores_an_embedlab_encoder_through_its_own_search_as_embedlab_does(adi):
    from embedlab_mteb import MTEBEncoder
    from mteb.models.models_protocols import EncoderProtocol

    model = MTEBEncoder("minilm")
    assert isinstance(model, EncoderProtocol) and model.mteb_model_meta.name == "embedlab/minilm"
    scores = local_retrieval_task(adi, "test").evaluate(model, "test", encode_kwargs={"batch_size": 16})["default"]
    split = adi.split("test")
    pipeline = embedlab.Pipeline.from_names(encoder=model.encoder)
    pipeline.build(adi.corpus)
    ours = embedlab.evaluate(pipeline.search(split.queries, k=100), split.qrels, ["nDCG@10", "R@100"]).aggregates
    assert scores["ndcg_at_10"] == pytest.approx(ours["nDCG@10"], abs=1e-4)
    assert scores["recall_at_100"] == pytest.approx(ours["R@100"], abs=1e-4)
    assert ours["nDCG@10"] > 0.2


def test_the_encoder_adapter_refuses_what_mteb_cannot_use():
    from embedlab_mteb import MTEBEncoder

    with pytest.raises(embedlab.ConfigError, match="needs a dense encoder"):
        MTEBEncoder({"name": "bm25"})
    with pytest.raises(embedlab.ConfigError, match="needs a 'name'"):
        MTEBEncoder({"dim": 3})
    with pytest.raises(embedlab.ConfigError, match="wraps an embedlab encoder"):
        MTEBEncoder(object())
