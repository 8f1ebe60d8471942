"""embedlab inside PyTerrier (pt.Transformer, pt.Experiment) and PyTerrier inside embedlab (a first stage)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyterrier as pt
import pytest
from embedlab_pyterrier import EmbedlabTransformer, PyTerrierRetriever
from ir_measures import R, nDCG

import embedlab
from embedlab.datasets.beir import load_beir

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


@pytest.fixture(scope="module")
def adi():
    return load_beir(DATA / "adi" / "beir")


@pytest.fixture(scope="module")
def built(adi):
    pipeline = embedlab.Pipeline.from_names(encoder={"name": "hashing", "dim": 256})
    pipeline.build(adi.corpus)
    return pipeline


def topics_and_qrels(adi):
    split = adi.split("test")
    topics = pd.DataFrame({"qid": split.queries.ids.tolist(), "query": list(split.queries.texts)})
    qrels = pd.DataFrame([{"qid": q, "docno": d, "label": g}
                          for q, docs in split.qrels.items() for d, g in docs.items()])
    return split, topics, qrels


def test_pipeline_as_transformer_in_pt_experiment_scores_as_embedlab(adi, built):
    split, topics, qrels = topics_and_qrels(adi)
    transformer = EmbedlabTransformer(built, k=100)
    assert isinstance(transformer, pt.Transformer)
    table = pt.Experiment([transformer, transformer % 5], topics, qrels, eval_metrics=[nDCG @ 10, R @ 100],
                          names=["embedlab", "cut5"])
    ours = embedlab.evaluate(built.search(split.queries, 100), split.qrels, ["nDCG@10", "R@100"]).aggregates
    row = table.set_index("name").loc["embedlab"]
    assert row["nDCG@10"] == pytest.approx(ours["nDCG@10"], abs=1e-9)
    assert row["R@100"] == pytest.approx(ours["R@100"], abs=1e-9)
    assert table.set_index("name").loc["cut5", "R@100"] < row["R@100"]  # PyTerrier's % operator applies


def test_pyterrier_transformer_as_embedlab_first_stage_round_trips(adi, built):
    split, _, _ = topics_and_qrels(adi)
    first_stage = PyTerrierRetriever(EmbedlabTransformer(built, k=50) % 20)
    pipeline = embedlab.Pipeline(retriever=first_stage)
    pipeline.build(adi.corpus)
    ranking = pipeline.search(split.queries, k=10)
    direct = built.search(split.queries, k=10)
    assert ranking.doc_ids.tolist() == direct.doc_ids.tolist()
    indexed = PyTerrierRetriever(indexer=lambda corpus: EmbedlabTransformer(built))
    indexed.build(adi.corpus)
    assert indexed.search(split.queries, 10).doc_ids.tolist() == direct.doc_ids.tolist()


def test_errors(adi, built):
    with pytest.raises(embedlab.ConfigError, match="not both or neither"):
        PyTerrierRetriever()
    with pytest.raises(embedlab.ConfigError, match="build it on the corpus"):
        EmbedlabTransformer(embedlab.Pipeline.from_names(encoder="hashing"))
    with pytest.raises(embedlab.InvalidInputError, match="columns qid and query"):
        EmbedlabTransformer(built)(pd.DataFrame({"q": ["x"]}))
    stranger = pt.apply.generic(lambda df: df.assign(docno="not-a-doc", score=1.0, rank=0))
    retriever = PyTerrierRetriever(stranger)
    retriever.build(adi.corpus)
    with pytest.raises(embedlab.InvalidInputError, match="not in the corpus"):
        retriever.search(adi.split("test").queries, 5)
