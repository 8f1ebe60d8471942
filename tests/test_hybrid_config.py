"""Experiment files with fused first stages, registered retrievers and cascades."""

from __future__ import annotations

import pytest

from embedlab.errors import ConfigError
from embedlab.experiment import parse_config

BASE = """
[dataset]
name = "python-stdlib"

[[pipeline]]
name = "bm25"
encoder = { name = "bm25", k1 = 0.9 }

[[pipeline]]
name = "dense"
encoder = "minilm"
compressor = { name = "pq", m = 8 }
index = { name = "faiss", factory = "Flat" }
"""

HYBRID = BASE + """
[[pipeline]]
name = "hybrid"
retrievers = ["bm25", "dense", { label = "other", retriever = { name = "pyterrier", wmodel = "BM25" } }]
fusion = { method = "linear", norm = "z-score", depth = 200 }

[[pipeline]]
name = "cascade"
encoder = "bm25"
cascade = [{ reranker = { name = "maxsim" }, depth = 100 }, { reranker = "e2rank", depth = 20, label = "e2" }]
"""


def test_retrievers_by_pipeline_name_and_by_table():
    config = parse_config(HYBRID)
    hybrid = config.pipeline("hybrid")
    assert hybrid.encoder is None and hybrid.fusion == {"method": "linear", "norm": "z-score", "depth": 200}
    bm25, dense, other = hybrid.retrievers
    assert bm25 == {"label": "bm25", "encoder": {"name": "bm25", "k1": 0.9}, "index": {"name": "exact"}}
    assert dense["compressor"] == {"name": "pq", "m": 8} and dense["index"]["factory"] == "Flat"
    assert other == {"label": "other", "retriever": {"name": "pyterrier", "wmodel": "BM25"}}


def test_a_fused_pipeline_can_be_fused_again_by_name():
    config = parse_config(HYBRID + """
[[pipeline]]
name = "again"
retrievers = ["hybrid", "bm25"]
""")
    nested = config.pipeline("again").retrievers[0]
    assert nested["retriever"]["name"] == "fusion" and nested["retriever"]["method"] == "linear"
    assert len(nested["retriever"]["retrievers"]) == 3


def test_cascade_stages():
    cascade = parse_config(HYBRID).pipeline("cascade").cascade
    assert cascade[0] == {"reranker": {"name": "maxsim"}, "depth": 100}
    assert cascade[1] == {"reranker": {"name": "e2rank"}, "depth": 20, "label": "e2"}


def test_registered_retriever_first_stage():
    config = parse_config(BASE + '\n[[pipeline]]\nname = "r"\nretriever = { name = "dsi", beams = 4 }\n')
    assert config.pipeline("r").retriever == {"name": "dsi", "beams": 4} and config.pipeline("r").index is None


@pytest.mark.parametrize("table, message", [
    ('name = "x"\nretrievers = ["bm25", "nope"]', r"line \d+: pipeline\[2\].retrievers: 'nope' names no earlier"),
    ('name = "x"\nretrievers = ["bm25"]', "at least two first stages"),
    ('name = "x"\nretrievers = ["bm25", 3]', "a pipeline name or a first-stage table"),
    ('name = "x"\nencoder = "bm25"\nfusion = { method = "rrf" }', "'fusion' needs 'retrievers'"),
    ('name = "x"\nencoder = "bm25"\nretriever = "dsi"', "exactly one first stage"),
    ('name = "x"', "exactly one first stage"),
    ('name = "x"\nretriever = "dsi"\nindex = "exact"', "'index' belongs to an encoder first stage"),
    ('name = "x"\nencoder = "bm25"\nreranker = "maxsim"\ncascade = [{ reranker = "e2rank" }]',
     "'reranker' or 'cascade', not both"),
    ('name = "x"\nencoder = "bm25"\ncascade = [{ reranker = "maxsim", depth = 0 }]', "positive integer"),
    ('name = "x"\nencoder = "bm25"\ncascade = [{ reranker = "maxsim", k = 3 }]', "unknown key"),
    ('name = "x"\nencoder = "bm25"\ncascade = []', "list of tables"),
])
def test_errors_name_the_pipeline_and_line(table, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(BASE + "\n[[pipeline]]\n" + table + "\n")
