"""Saving and loading a sharded index in this process: the format (a manifest pinning one state
directory per shard), identical rankings after the round trip, and damaged shards detected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from embedlab_ray import ShardedIndex

from embedlab.errors import InvalidInputError, StateError
from embedlab.index import ExactIndex
from embedlab.persistence import MANIFEST
from embedlab.pq_compressor import PQCompressor

RNG = np.random.default_rng(7)
DOCS = RNG.standard_normal((300, 16)).astype(np.float32)
QUERIES = RNG.standard_normal((5, 16)).astype(np.float32)
GROUP = np.arange(300) % 4
CUTS = (0, 100, 170, 300)


def exact(rows: slice, compressor: PQCompressor | None = None) -> ExactIndex:
    index = ExactIndex(metric="l2", block_size=32)
    if compressor is not None:
        index.use_compressor(compressor)
    index.build(DOCS[rows], {"group": GROUP[rows]})
    return index


def sharded(compressor: PQCompressor | None = None) -> ShardedIndex:
    return ShardedIndex.from_indexes([exact(slice(a, b), compressor) for a, b in zip(CUTS, CUTS[1:])])


def same_results(a, b) -> None:
    assert np.array_equal(a.indices, b.indices)
    assert np.allclose(a.scores, b.scores, rtol=0, atol=1e-5)


@pytest.mark.parametrize("compressed", [False, True])
def test_round_trip_gives_the_rankings_of_one_index(tmp_path: Path, compressed: bool) -> None:
    compressor = PQCompressor(m=4, ksub=16, iterations=2).fit(DOCS) if compressed else None
    whole, index = exact(slice(None), compressor), sharded(compressor)
    index.save(tmp_path / "saved")
    manifest = json.loads((tmp_path / "saved" / MANIFEST).read_text())
    assert manifest["name"] == "sharded" and manifest["meta"]["bounds"] == list(CUTS)
    assert sorted(manifest["parts"]) == ["shard-00000", "shard-00001", "shard-00002"]
    assert json.loads((tmp_path / "saved" / "shard-00001" / MANIFEST).read_text())["name"] == "exact"
    for mmap in (False, True):
        loaded = ShardedIndex.load(tmp_path / "saved", mmap=mmap)
        assert (loaded.shards, len(loaded), loaded.name, loaded.on_ray) == (3, 300, "exact", False)
        assert loaded.config == whole.config and loaded.memory_bytes == index.memory_bytes
        for kwargs in ({}, {"filter": {"group": 2}}):
            same_results(loaded.search(QUERIES, 12, **kwargs), whole.search(QUERIES, 12, **kwargs))
            same_results(loaded.search(QUERIES, 12, **kwargs), index.search(QUERIES, 12, **kwargs))


def largest_file(shard: Path) -> Path:
    return max((p for p in shard.iterdir() if p.suffix == ".npy"), key=lambda p: p.stat().st_size)


def test_a_corrupted_or_truncated_shard_is_detected_by_its_checksum(tmp_path: Path) -> None:
    sharded().save(tmp_path / "saved")
    victim = largest_file(tmp_path / "saved" / "shard-00001")
    original = victim.read_bytes()
    damaged = bytearray(original)
    damaged[-5] ^= 0xFF
    victim.write_bytes(bytes(damaged))
    with pytest.raises(StateError, match="shard-00001.*checksum mismatch"):
        ShardedIndex.load(tmp_path / "saved")
    victim.write_bytes(original[:-64])
    with pytest.raises(StateError, match="shard-00001.*truncated"):
        ShardedIndex.load(tmp_path / "saved")
    victim.write_bytes(original)
    ShardedIndex.load(tmp_path / "saved")  # intact again


def test_a_missing_or_foreign_shard_and_forged_bounds_are_refused(tmp_path: Path) -> None:
    sharded().save(tmp_path / "saved")
    other = tmp_path / "other"
    ShardedIndex.from_indexes([exact(slice(0, 100)), exact(slice(100, 300))]).save(other)
    shard = tmp_path / "saved" / "shard-00001"
    (shard / MANIFEST).write_bytes((other / "shard-00001" / MANIFEST).read_bytes())
    with pytest.raises(StateError, match="not the part saved with"):
        ShardedIndex.load(tmp_path / "saved")
    sharded().save(tmp_path / "saved")  # replaces the damaged state
    manifest_file = tmp_path / "saved" / MANIFEST
    manifest = json.loads(manifest_file.read_text())
    manifest["meta"]["bounds"] = [0, 100, 160, 300]
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(StateError, match="shards hold"):
        ShardedIndex.load(tmp_path / "saved")
    manifest["meta"]["bounds"] = [0, 100, 300]
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(StateError, match="expected the parts"):
        ShardedIndex.load(tmp_path / "saved")
    with pytest.raises(StateError, match="not an embedlab state directory"):
        ShardedIndex.load(tmp_path / "nothing")


def test_from_indexes_refuses_no_or_empty_shards() -> None:
    with pytest.raises(InvalidInputError, match="no shards"):
        ShardedIndex.from_indexes([])
    with pytest.raises(InvalidInputError, match="at least one document"):
        ShardedIndex.from_indexes([exact(slice(0, 10)), ExactIndex()])
