"""Experiment TOML parsing: shape, defaults and errors that name line and key."""

from __future__ import annotations

import pytest

from embedlab.errors import ConfigError
from embedlab.experiment import load_config, parse_config

VALID = """
[dataset]
path = "../shared/data/scifact/beir"
split = "test"

[experiment]
metrics = ["nDCG@10", "RR@10", "R@100"]
baseline = "bm25"

[[pipeline]]
name = "bm25"
encoder = { name = "bm25" }
index = { name = "exact" }

[[pipeline]]
name = "minilm-hnsw"
encoder = "minilm"
index = { name = "faiss", factory = "HNSW32", efSearch = 64 }
reranker = { name = "maxsim", k = 50 }
"""


def test_valid_config():
    config = parse_config(VALID)
    assert config.split == "test" and config.baseline == "bm25"
    assert config.metrics == ("nDCG@10", "RR@10", "R@100")
    hnsw = config.pipeline("minilm-hnsw")
    assert hnsw.encoder == {"name": "minilm"}
    assert hnsw.index == {"name": "faiss", "factory": "HNSW32", "efSearch": 64}
    assert hnsw.reranker == {"name": "maxsim", "k": 50} and hnsw.compressor is None


def test_train_split_is_optional():
    assert parse_config(VALID).train_split is None
    assert parse_config(VALID.replace('split = "test"', 'split = "test"\ntrain_split = "train"')).train_split == "train"


def test_index_defaults_to_exact():
    config = parse_config(VALID.replace('index = { name = "exact" }\n', ""))
    assert config.pipeline("bm25").index == {"name": "exact"}


@pytest.mark.parametrize("edit, message", [
    (("metrics = [", "metrics = ["), None),
    (('baseline = "bm25"', 'baseline = "bm26"'), r"line 8: experiment.baseline: 'bm26' names no pipeline"),
    (('name = "minilm-hnsw"', 'name = "bm25"'), "unique; repeated: bm25"),
    (('reranker = {', 'rerankr = {'), r"line 19: pipeline\[1\].rerankr: unknown key"),
    (('encoder = "minilm"', 'encoder = 7'), r"line 17: pipeline\[1\].encoder: must be a table"),
    (('index = { name = "faiss",', 'index = { name = 3,'), r"line 18: pipeline\[1\].index: .*string 'name'"),
    (('baseline = "bm25"', 'baseline = "bm25"\nthreads = 2'), r"experiment.threads: unknown key"),
    (('path = "../shared/data/scifact/beir"', 'limit = 3'), "needs 'name'.*or 'path'"),
    (('split = "test"', 'split = "test"\ntrain_split = "test"'), r"line 5: dataset.train_split: 'test' is the"),
    (('split = "test"', 'split = "test"\ntrain_split = 1'), r"line 5: dataset.train_split: must be a non-empty string"),
])
def test_errors_name_the_line_and_key(edit, message):
    text = VALID.replace(*edit)
    if message is None:
        parse_config(text)
        return
    with pytest.raises(ConfigError, match=message):
        parse_config(text)


def test_malformed_toml_reports_the_line():
    with pytest.raises(ConfigError, match=r"malformed TOML.*line 3"):
        parse_config('[dataset]\nname = "x"\nsplit = \n', source="bad.toml")


def test_missing_file():
    with pytest.raises(ConfigError, match="does not exist"):
        load_config("/nonexistent/experiment.toml")
