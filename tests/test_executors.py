"""The executor seam: local executor, executor specs in experiment files, exact top-k merging."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.errors import ConfigError, UnknownComponentError
from embedlab.executors import Executor, LocalExecutor, create_executor
from embedlab.experiment.config import parse_config
from embedlab.index import ExactIndex
from embedlab.index.topk import merge_results
from embedlab.ranking import SearchResult

EXPERIMENT = """
[dataset]
name = "python-stdlib"
[experiment]
metrics = ["nDCG@10"]
{line}
[[pipeline]]
name = "h"
encoder = "hashing"
"""


def test_executor_specs_resolve_through_the_registry() -> None:
    assert isinstance(create_executor(None), LocalExecutor)
    assert isinstance(create_executor("local"), Executor)
    assert "executor" in embedlab.registry().kinds()
    with pytest.raises(UnknownComponentError, match="Installed executors: local"):
        create_executor({"name": "no-such-executor"})
    with pytest.raises(TypeError, match="not an executor"):
        create_executor(42)


@pytest.mark.parametrize("line, expected", [
    ("", None),
    ('executor = "ray"', {"name": "ray"}),
    ('executor = { name = "ray", actors = 4 }', {"name": "ray", "actors": 4}),
])
def test_experiment_files_name_their_executor(line: str, expected) -> None:
    assert parse_config(EXPERIMENT.format(line=line)).executor == expected


def test_a_malformed_executor_names_the_line() -> None:
    with pytest.raises(ConfigError, match="line 6.*executor"):
        parse_config(EXPERIMENT.format(line="executor = 3"))


def test_merging_shard_results_equals_one_exact_index() -> None:
    rng = np.random.default_rng(0)
    docs = np.round(rng.standard_normal((300, 8)), 1).astype(np.float32)  # many tied scores
    queries = np.round(rng.standard_normal((12, 8)), 1).astype(np.float32)
    whole = ExactIndex(block_size=32)
    whole.build(docs)
    mask = rng.random(300) < 0.2
    for k in (1, 7, 80):
        for filter in (None, mask):
            parts = []
            for start, stop in ((0, 64), (64, 192), (192, 300)):
                shard = ExactIndex(block_size=32)
                shard.build(docs[start:stop])
                found = shard.search(queries, k, filter=None if filter is None else filter[start:stop])
                parts.append(SearchResult(found.scores, np.where(found.indices >= 0, found.indices + start, -1)))
            merged, expected = merge_results(parts, k), whole.search(queries, k, filter=filter)
            assert np.array_equal(merged.indices, expected.indices)
            assert np.array_equal(merged.scores, expected.scores)


def test_hashing_encoder_is_deterministic_and_normalised() -> None:
    encoder = embedlab.create("encoder", "hashing", dim=64)
    a = encoder.encode_documents(["Alpha beta", "", "beta alpha gamma"])
    assert a.shape == (3, 64) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a[[0, 2]], axis=1), 1) and not a[1].any()
    assert np.array_equal(a[0], embedlab.create("encoder", "hashing", dim=64).encode_queries(["beta ALPHA"])[0])
    salted = embedlab.create("encoder", "hashing", dim=64, seed=1)
    assert not np.array_equal(a[0], salted.encode_queries(["alpha beta"])[0])
