"""Save and reload through embedlab.persistence: identical results, memory-mapped vectors, damage detected."""

from __future__ import annotations

import json

import numpy as np
import pytest
from embedlab_bidr import BiDRIndex

import embedlab
from embedlab.crashtest import assert_atomic_saves
from embedlab.errors import StateError
from embedlab.pq_compressor import PQCompressor
from embedlab.testing import reseal


def test_save_load_gives_identical_results_and_maps_the_vectors(built, docs, queries, tmp_path) -> None:
    lang = np.where(np.arange(len(docs)) % 2 == 0, "en", "fr")
    built.build(docs, attributes={"lang": lang})
    before = built.search(queries, 10, filter={"lang": "fr"})
    built.save(tmp_path / "state")
    work = tmp_path / "work"
    assert not any(work.iterdir())  # the working copy is gone: the index now reads the saved vectors
    loaded = embedlab.load_component(tmp_path / "state")
    assert isinstance(loaded, BiDRIndex) and isinstance(loaded.vectors, np.memmap)
    assert isinstance(built.vectors, np.memmap) and str(tmp_path / "state") in str(built.vectors.filename)
    for index in (built, loaded):
        after = index.search(queries, 10, filter={"lang": "fr"})
        np.testing.assert_array_equal(after.indices, before.indices)
        np.testing.assert_array_equal(after.scores, before.scores)
    assert loaded.memory_bytes == built.memory_bytes and loaded.disk_bytes == built.disk_bytes
    assert loaded.config == built.config


def test_a_loaded_index_rebuilds_with_its_saved_codes(built, docs, queries, tmp_path) -> None:
    """A saved index reused as a stage (``{ load = ... }``) is rebuilt on the pipeline's corpus: its
    codes come from the saved compressor (trained codebooks stay), not from a fresh PQ fit."""
    built.save(tmp_path / "state")
    loaded = BiDRIndex.load(tmp_path / "state", verify=False)
    saved = loaded._codes.compressor.codebooks.centroids.copy()
    loaded.build(docs[:900], None)
    np.testing.assert_array_equal(loaded._codes.compressor.codebooks.centroids, saved)
    np.testing.assert_array_equal(loaded.search_codes(queries, 10).scores,
                                  built.search_codes(queries, 10, filter=np.arange(len(docs)) < 900).scores)


def test_loaded_index_accepts_added_documents_without_touching_the_state(built, docs, queries, tmp_path) -> None:
    built.save(tmp_path / "state")
    loaded = BiDRIndex.load(tmp_path / "state")
    loaded.add(docs[:5] * 2)
    assert len(loaded) == len(docs) + 5 and loaded.search(docs[:1] * 2, 1).indices[0, 0] == len(docs)
    assert len(BiDRIndex.load(tmp_path / "state")) == len(docs)


def test_truncated_vectors_file_is_detected(built, tmp_path) -> None:
    built.save(tmp_path / "state")
    vectors = tmp_path / "state" / "vectors.npy"
    data = vectors.read_bytes()
    vectors.write_bytes(data[:-100])
    with pytest.raises(StateError, match="truncated"):
        BiDRIndex.load(tmp_path / "state")


def test_corrupted_vectors_file_is_detected(built, tmp_path) -> None:
    built.save(tmp_path / "state")
    vectors = tmp_path / "state" / "vectors.npy"
    data = bytearray(vectors.read_bytes())
    data[-7] ^= 0xFF
    vectors.write_bytes(bytes(data))
    with pytest.raises(StateError, match="checksum"):
        BiDRIndex.load(tmp_path / "state")
    assert len(BiDRIndex.load(tmp_path / "state", verify=False)) == len(built)  # documented escape hatch


def test_missing_codes_or_wrong_component_is_detected(built, tmp_path) -> None:
    built.save(tmp_path / "state")
    with pytest.raises(StateError, match="expected"):
        PQCompressor.load(tmp_path / "state")
    manifest = tmp_path / "state" / "codes" / "manifest.json"
    manifest.unlink()
    with pytest.raises(StateError, match="codes"):
        BiDRIndex.load(tmp_path / "state")


def test_vector_count_must_match_the_codes(built, docs, tmp_path) -> None:
    built.save(tmp_path / "a")
    other = BiDRIndex(m=8, ksub=16, kmeans_iterations=8)
    other.build(docs[:200])
    other.save(tmp_path / "b")
    (tmp_path / "a" / "codes").rename(tmp_path / "a-codes")
    (tmp_path / "b" / "codes").rename(tmp_path / "a" / "codes")
    with pytest.raises(StateError, match="codes/manifest.json: not the part saved with"):
        BiDRIndex.load(tmp_path / "a")
    reseal(tmp_path / "a")  # a forger recomputes the checksums: the shapes still disagree
    with pytest.raises(StateError, match=r"vectors\.npy: shape .*expected \(200, 32\)"):
        BiDRIndex.load(tmp_path / "a")


def test_saved_compressor_round_trips(docs, tmp_path) -> None:
    pq = PQCompressor(m=8, ksub=16, iterations=8).fit(docs)
    pq.save(tmp_path / "pq")
    again = embedlab.load_component(tmp_path / "pq")
    np.testing.assert_array_equal(again.encode(docs), pq.encode(docs))
    manifest = json.loads((tmp_path / "pq" / "manifest.json").read_text())
    assert manifest["name"] == "pq" and manifest["config"]["m"] == 8


def test_kill_during_save_leaves_the_old_or_the_new_index(make_vectors, queries, tmp_path, monkeypatch) -> None:
    """Vectors, codes and the PQ compressor are one atomic publish (before: 3 saves, each removing
    the previous state first)."""
    monkeypatch.setenv("EMBEDLAB_FSYNC", "0")

    def build(version: int) -> BiDRIndex:
        index = BiDRIndex(m=8, ksub=16, kmeans_iterations=2, candidates=20, seed=version,
                          storage_dir=str(tmp_path / "work"))
        index.build(make_vectors(400, seed=version))
        return index

    def probe(index: BiDRIndex) -> np.ndarray:
        result = index.search(queries[:5], 5)
        return np.concatenate([result.indices.ravel(), result.scores.ravel().view(np.int32)])

    assert_atomic_saves(build, probe, tmp_path / "kills", points=6, load=BiDRIndex.load)
