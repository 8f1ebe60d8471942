"""End to end through the CLI with the reference plugins: the quickstart's shape on a small slice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.cli import main
from embedlab.experiment import load_config
from embedlab.experiment.runner import build_pipeline
from embedlab.pipeline import create_component
from embedlab.trec import read_run

REPO = Path(__file__).resolve().parents[2]

SMALL = """
[dataset]
name = "python-stdlib"
limit = 150
split = "train"

[experiment]
metrics = ["nDCG@10", "RR@10", "R@100"]
baseline = "bm25"
k = 20

[[pipeline]]
name = "bm25"
encoder = { name = "bm25" }

[[pipeline]]
name = "minilm"
encoder = { name = "minilm", num_threads = 1, show_progress = false }

[[pipeline]]
name = "minilm-flat"
encoder = { name = "minilm", num_threads = 1, show_progress = false }
index = { name = "faiss", factory = "Flat" }

[[pipeline]]
name = "minilm-maxsim"
encoder = { name = "minilm", num_threads = 1, show_progress = false }
reranker = { name = "maxsim", k = 5, num_threads = 1, show_progress = false }

[[pipeline]]
name = "hybrid"
retrievers = ["bm25", "minilm"]
fusion = { method = "rrf" }

[[pipeline]]
name = "bm25-cascade"
encoder = { name = "bm25" }
cascade = [{ reranker = { name = "maxsim", num_threads = 1, show_progress = false }, depth = 10 }]
"""


def test_quickstart_config_builds_every_component():
    config = load_config(REPO / "examples" / "quickstart.toml")
    assert config.baseline == "bm25" and len(config.pipelines) == 4


@pytest.mark.parametrize("example", sorted(p.name for p in (REPO / "examples").glob("*.toml")))
def test_every_example_config_builds_every_component(example):
    """Every shipped experiment file parses and names components that exist with valid settings."""
    config = load_config(REPO / "examples" / example)
    for spec in config.pipelines:
        pipeline = build_pipeline(spec)
        if spec.encoder is not None:
            stages = {"encoder", "index"} | {stage for stage in ("compressor", "reranker") if getattr(spec, stage)}
        else:
            stages = {"retriever"}
        assert set(pipeline.fingerprints()) >= stages


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiment")
    config = root / "small.toml"
    config.write_text(SMALL)
    return root, config


def _run(capsys, config: Path, out: Path, cache: Path) -> tuple[str, dict]:
    assert main(["run", str(config), "--output", str(out), "--cache-dir", str(cache), "--quiet"]) == 0
    table = capsys.readouterr().out
    return table, json.loads((out / "results.json").read_text())


def test_experiment_writes_table_json_csv_and_runs_and_reruns_from_cache(experiment, capsys):
    root, config = experiment
    table, results = _run(capsys, config, root / "out1", root / "cache")
    for name in ("bm25 (baseline)", "minilm", "minilm-flat", "minilm-maxsim", "p(t) nDCG@10", "ms/query",
                 "hybrid", "bm25-cascade", "ms/query by stage", "bm25-cascade: first stage > maxsim@10"):
        assert name in table
    pipelines = {p["name"]: p for p in results["pipelines"]}
    assert set(pipelines) == {"bm25", "minilm", "minilm-flat", "minilm-maxsim", "hybrid", "bm25-cascade"}
    queries = results["dataset"]["queries"]
    for pipeline in pipelines.values():
        assert set(pipeline["aggregates"]) == {"nDCG@10", "RR@10", "R@100"}
        assert len(pipeline["per_query"]["nDCG@10"]) == queries
        expected = {"retriever"} if pipeline["name"] == "hybrid" else {"encoder", "index"}
        assert set(pipeline["fingerprints"]) >= expected
    # the code-search task is real: dense retrieval finds the function for most docstrings
    assert pipelines["minilm"]["aggregates"]["RR@10"] > 0.3
    # FAISS Flat is exact: same ranking quality as the core exact index
    assert pipelines["minilm-flat"]["aggregates"] == pytest.approx(pipelines["minilm"]["aggregates"])
    # the fused first stage returns documents that bm25 or minilm returned at depth k, nothing else
    runs = {name: read_run(root / "out1" / "runs" / f"{name}.trec") for name in ("bm25", "minilm", "hybrid")}
    for qid, docs, _ in runs["hybrid"]:
        found = set(runs["bm25"].to_dict()[qid]) | set(runs["minilm"].to_dict()[qid])
        assert set(docs.tolist()) <= found
    assert pipelines["hybrid"]["fingerprints"]["bm25.encoder"] == pipelines["bm25"]["fingerprints"]["encoder"]
    assert list(pipelines["bm25-cascade"]["timings"]["stage_latency_ms"]) == ["first stage", "maxsim@10"]
    # the cascade reorders bm25's top 10 only: the same documents, the rest scored below them
    bm25_run, cascade_run = runs["bm25"].to_dict(), read_run(root / "out1" / "runs" / "bm25-cascade.trec")
    for qid, docs, scores in cascade_run:
        assert set(docs.tolist()) == set(bm25_run[qid])
        assert len(scores) <= 10 or scores[10:].max() < scores[:10].min()
    comparisons = [c for c in results["comparisons"] if c["metric"] == "nDCG@10"]
    assert {c["pipeline"] for c in comparisons} == {"minilm", "minilm-flat", "minilm-maxsim", "hybrid", "bm25-cascade"}
    assert all(0.0 <= c["p_ttest_holm"] <= 1.0 and c["p_ttest"] <= c["p_ttest_holm"] for c in comparisons)
    assert all(c["improved"] + c["degraded"] + c["tied"] == queries for c in comparisons)
    run = read_run(root / "out1" / "runs" / "minilm.trec")
    assert len(run) == queries and run.k == 100  # deepened to the largest cutoff, R@100
    rows = list(csv.DictReader((root / "out1" / "results.csv").open()))
    assert [r["pipeline"] for r in rows] == ["bm25", "minilm", "minilm-flat", "minilm-maxsim", "hybrid", "bm25-cascade"]

    _, again = _run(capsys, config, root / "out2", root / "cache")
    rerun = {p["name"]: p for p in again["pipelines"]}
    for name in ("minilm", "minilm-flat", "minilm-maxsim"):
        assert rerun[name]["timings"]["cache_hits"] == 2  # documents and queries from the cache
        assert rerun[name]["aggregates"] == pytest.approx(pipelines[name]["aggregates"])


def test_faiss_flat_and_core_exact_agree_on_scifact(shared_data):
    dataset = embedlab.load_dataset("beir", path=str(shared_data / "scifact" / "beir"))
    corpus = dataset.corpus
    keep = np.arange(300)
    small = embedlab.Corpus(corpus.ids[keep], [corpus.texts[i] for i in keep], [corpus.titles[i] for i in keep])
    encoder = create_component("encoder", {"name": "minilm", "num_threads": 1, "show_progress": False})
    docs = encoder.encode_documents(small.documents())
    queries = encoder.encode_queries(list(dataset.queries.texts[:40]))
    exact = embedlab.create("index", "exact")
    flat = embedlab.create("index", "faiss", factory="Flat")
    exact.build(docs)
    flat.build(docs)
    ours, theirs = exact.search(queries, 10), flat.search(queries, 10)
    np.testing.assert_allclose(ours.scores, theirs.scores, atol=1e-5)
    same = (ours.indices == theirs.indices) | np.isclose(ours.scores, theirs.scores, atol=1e-6)
    assert same.all()
