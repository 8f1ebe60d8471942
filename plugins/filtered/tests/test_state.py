"""Saving and loading (identical results, corruption detected), determinism and parameter checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from embedlab_filtered import AcornIndex, PostfilterIndex, PrefilterIndex

import embedlab
from embedlab.errors import ConfigError, StateError
from embedlab.persistence import save_state

FILTERS = [None, {"group": {"in": [2, 3, 4]}}, {"size": {"lt": 30}, "label": "b"}]


def built(cls, data, **params):
    index = cls(**params)
    index.build(data["docs"], data["attributes"])
    return index


@pytest.mark.parametrize("cls, params", [(PrefilterIndex, {"metric": "l2"}),
                                         (PostfilterIndex, {"index_params": {"metric": "cosine"}}),
                                         (AcornIndex, {"M": 8, "gamma": 6, "M_beta": 12, "metric": "cosine",
                                                       "exact_below": 0})])
def test_save_load_identical(tmp_path, data, cls, params):
    index = built(cls, data, **params)
    index.save(tmp_path / "index")
    loaded = embedlab.load_component(tmp_path / "index")
    assert type(loaded) is cls and loaded.config == index.config and len(loaded) == len(index)
    assert loaded.memory_bytes == index.memory_bytes
    for spec in FILTERS:
        before, after = index.search(data["queries"], 10, filter=spec), loaded.search(data["queries"], 10, filter=spec)
        np.testing.assert_array_equal(after.indices, before.indices)
        np.testing.assert_array_equal(after.scores, before.scores)
    labels = loaded.attributes["label"]
    assert labels[0] is None and labels.dtype == object  # missing values survive


def test_corrupted_files_are_detected(tmp_path, data):
    index = built(AcornIndex, data, M=8, gamma=4, M_beta=8)
    index.save(tmp_path / "acorn")
    neighbors = tmp_path / "acorn" / "neighbors.npy"
    raw = bytearray(neighbors.read_bytes())
    raw[-5] ^= 0xFF
    neighbors.write_bytes(bytes(raw))
    with pytest.raises(StateError, match="checksum"):
        AcornIndex.load(tmp_path / "acorn")
    post = built(PostfilterIndex, data)
    post.save(tmp_path / "post")
    (tmp_path / "post" / "inner" / "manifest.json").unlink()
    with pytest.raises(StateError, match="inner: part of the saved state is missing"):
        PostfilterIndex.load(tmp_path / "post")
    with pytest.raises(StateError, match="expected"):
        PrefilterIndex.load(tmp_path / "acorn")


def test_inconsistent_graph_is_detected(tmp_path, data):
    """Arrays with valid checksums that do not form a walkable graph are refused."""
    index = built(AcornIndex, data, M=8, gamma=4, M_beta=8)
    arrays = {"vectors": index._vectors, "levels": index._levels, "offsets": index._offsets,
              "neighbors": index._neighbors.copy()}
    arrays["neighbors"][7] = len(index) + 5
    meta = {"attributes": [], "entry": index._entry, "max_level": index._max_level}
    save_state(tmp_path / "bad", index, arrays=arrays, meta=meta)
    with pytest.raises(StateError, match="neighbor slots out of range"):
        AcornIndex.load(tmp_path / "bad")
    arrays["neighbors"] = index._neighbors
    save_state(tmp_path / "bad", index, arrays=arrays, meta={**meta, "entry": -3})
    with pytest.raises(StateError, match="entry point"):
        AcornIndex.load(tmp_path / "bad")
    manifest = json.loads((tmp_path / "bad" / "manifest.json").read_text())
    manifest["config"]["M"] = 9  # the offsets no longer match the list capacities
    manifest["meta"]["entry"] = index._entry
    (tmp_path / "bad" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StateError, match="offsets"):
        AcornIndex.load(tmp_path / "bad")


def test_acorn_build_is_deterministic(data):
    first, second = built(AcornIndex, data, seed=3, exact_below=0), built(AcornIndex, data, seed=3, exact_below=0)
    np.testing.assert_array_equal(first._neighbors, second._neighbors)
    other = built(AcornIndex, data, seed=4)
    assert not np.array_equal(first._levels, other._levels)
    results = [index.search(data["queries"], 10, filter=FILTERS[1]).indices for index in (first, second)]
    np.testing.assert_array_equal(*results)


@pytest.mark.parametrize("cls, params", [
    (AcornIndex, {"M": 1}), (AcornIndex, {"gamma": 0}), (AcornIndex, {"M": 4, "gamma": 2, "M_beta": 17}),
    (AcornIndex, {"metric": "dot"}), (AcornIndex, {"ef_search": 0}), (AcornIndex, {"exact_below": -1}),
    (AcornIndex, {"seed": 1.5}), (AcornIndex, {"ef": 10}), (PrefilterIndex, {"block_size": 0}),
    (PostfilterIndex, {"growth": 1.0}), (PostfilterIndex, {"oversample": 0}), (PostfilterIndex, {"max_k": 0}),
    (PostfilterIndex, {"index": "no-such-index"}), (PostfilterIndex, {"index_params": {"metric": "dot"}}),
    (PostfilterIndex, {"index_params": [("metric", "ip")]}),
])
def test_bad_parameters(cls, params):
    with pytest.raises(ConfigError):
        cls(**params)


def test_bad_search_arguments(data):
    index = built(AcornIndex, data, M=8, gamma=4, M_beta=8)
    with pytest.raises(embedlab.InvalidInputError, match="k must"):
        index.search(data["queries"], 0)
    with pytest.raises(embedlab.InvalidInputError, match="dimension"):
        index.search(data["queries"][:, :5], 3)
    with pytest.raises(embedlab.InvalidInputError, match="unknown attribute"):
        index.search(data["queries"], 3, filter={"colour": "red"})
    with pytest.raises(embedlab.InvalidInputError, match="ef_search"):
        index.search(data["queries"], 3, ef_search=0)
    with pytest.raises(embedlab.InvalidInputError, match="empty"):
        AcornIndex().search(data["queries"], 3)


@pytest.mark.parametrize("cls", [PrefilterIndex, PostfilterIndex])
def test_kill_during_save_leaves_the_old_or_the_new_index(tmp_path, data, monkeypatch, cls):
    """Attribute columns and the inner index are one atomic publish (before: two saves)."""
    from embedlab.crashtest import assert_atomic_saves

    monkeypatch.setenv("EMBEDLAB_FSYNC", "0")

    def build(version: int):
        rows = slice(0, 500 * version)
        return built(cls, {"docs": data["docs"][rows],
                           "attributes": {k: v[rows] for k, v in data["attributes"].items()}})

    def probe(index) -> np.ndarray:
        result = index.search(data["queries"][:5], 5, filter={"group": {"in": [2, 3, 4]}})
        return np.concatenate([result.indices.ravel(), result.scores.ravel().view(np.int32)])

    assert_atomic_saves(build, probe, tmp_path, points=6, load=cls.load)
