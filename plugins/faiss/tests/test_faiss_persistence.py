"""save/load through FAISS's serializer inside an embedlab state directory."""

from __future__ import annotations

import json

import faiss
import numpy as np
import pytest
from embedlab_faiss import FaissIndex

import embedlab
from embedlab import StateError

RNG = np.random.default_rng(1)
DOCS = RNG.standard_normal((2000, 32)).astype(np.float32)
QUERIES = RNG.standard_normal((30, 32)).astype(np.float32)
YEARS = np.arange(2000) % 7


@pytest.mark.parametrize("params", [
    {"factory": "Flat", "metric": "cosine"},
    {"factory": "IVF16,SQ8", "nprobe": 5, "metric": "l2", "train_size": 1000},
    {"factory": "HNSW16", "efSearch": 40},
], ids=["flat-cosine", "ivf-sq-l2", "hnsw"])
def test_roundtrip_gives_identical_results(tmp_path, params):
    index = FaissIndex(**params)
    index.build(DOCS, {"year": YEARS})
    index.save(tmp_path / "index")
    loaded = embedlab.load_component(tmp_path / "index")
    assert isinstance(loaded, FaissIndex) and loaded.config == index.config
    assert len(loaded) == 2000 and loaded.dim == 32 and loaded.memory_bytes == index.memory_bytes
    for filter in (None, {"year": 3}):
        before, after = index.search(QUERIES, 10, filter=filter), loaded.search(QUERIES, 10, filter=filter)
        np.testing.assert_array_equal(before.indices, after.indices)
        np.testing.assert_array_equal(before.scores, after.scores)
    np.testing.assert_array_equal(loaded.attributes["year"], YEARS)


def test_state_is_faiss_bytes_plus_manifest(tmp_path):
    index = FaissIndex(factory="IVF8,Flat", nprobe=3)
    index.build(DOCS)
    index.save(tmp_path / "index")
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["kind"] == "index" and manifest["name"] == "faiss"
    assert manifest["config"]["factory"] == "IVF8,Flat" and manifest["meta"]["ntotal"] == 2000
    raw = faiss.read_index(str(tmp_path / "index" / "index.faiss"))  # readable by FAISS itself
    assert raw.ntotal == 2000 and faiss.extract_index_ivf(raw).nprobe == 3


def test_corrupted_index_file_is_detected(tmp_path):
    index = FaissIndex(factory="Flat")
    index.build(DOCS)
    index.save(tmp_path / "index")
    file = tmp_path / "index" / "index.faiss"
    data = bytearray(file.read_bytes())
    data[len(data) // 2] ^= 0x01
    file.write_bytes(bytes(data))
    with pytest.raises(StateError, match="checksum mismatch"):
        FaissIndex.load(tmp_path / "index")
    file.write_bytes(bytes(data[:-10]))
    with pytest.raises(StateError, match="truncated"):
        FaissIndex.load(tmp_path / "index")


def test_saving_an_empty_index_fails(tmp_path):
    with pytest.raises(embedlab.NotFittedError):
        FaissIndex().save(tmp_path / "index")


def test_string_attributes_with_missing_values_survive_save(tmp_path):
    packages = np.array([["json", None, "csv"][i % 3] for i in range(2000)], dtype=object)
    index = FaissIndex(factory="Flat")
    index.build(DOCS, {"package": packages, "year": YEARS})
    index.save(tmp_path / "index")
    loaded = FaissIndex.load(tmp_path / "index")
    assert loaded.attributes["package"].tolist() == packages.tolist()
    before = index.search(QUERIES, 10, filter={"package": "csv"})
    after = loaded.search(QUERIES, 10, filter={"package": "csv"})
    np.testing.assert_array_equal(before.indices, after.indices)
    assert (before.indices % 3 == 2).all()
