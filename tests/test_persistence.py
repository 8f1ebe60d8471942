"""Saved state: manifest, checksums, atomic writes, clear errors for damaged or foreign state."""

from __future__ import annotations

import json

import attrs
import numpy as np
import pytest

import embedlab
from embedlab.errors import StateError
from embedlab.persistence import load_state, save_state


class Toy(embedlab.Component):
    kind = "compressor"
    name = "toy"

    @attrs.frozen
    class Config:
        bits: int = 8


@pytest.fixture
def saved(tmp_path):
    arrays = {"centroids": np.arange(12, dtype=np.float32).reshape(3, 4), "ids": np.array(["a", "b"])}
    path = save_state(tmp_path / "state", Toy(bits=4), arrays, files={"raw.bin": b"\x00\x01\x02"},
                      meta={"trained_on": 3})
    return path, arrays


def test_roundtrip_keeps_arrays_files_and_identity(saved):
    path, arrays = saved
    state = load_state(path, kind="compressor", name="toy")
    np.testing.assert_array_equal(state.arrays["centroids"], arrays["centroids"])
    np.testing.assert_array_equal(state.arrays["ids"], arrays["ids"])
    assert state.files["raw.bin"].read_bytes() == b"\x00\x01\x02"
    assert state.config == {"bits": 4}
    assert state.meta == {"trained_on": 3}
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["kind"] == "compressor"
    assert manifest["name"] == "toy" and manifest["distribution"] == Toy.__module__.split(".")[0]
    assert set(manifest["files"]) == {"centroids.npy", "ids.npy", "raw.bin"}
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())


def test_mmap_load(saved):
    state = load_state(saved[0], mmap=True)
    assert isinstance(state.arrays["centroids"], np.memmap)


def test_truncated_file_is_named(saved):
    path, _ = saved
    data = (path / "centroids.npy").read_bytes()
    (path / "centroids.npy").write_bytes(data[:-5])
    with pytest.raises(StateError, match=r"centroids\.npy.*truncated"):
        load_state(path)


def test_edited_file_fails_checksum(saved):
    path, _ = saved
    data = bytearray((path / "centroids.npy").read_bytes())
    data[-1] ^= 0xFF
    (path / "centroids.npy").write_bytes(bytes(data))
    with pytest.raises(StateError, match=r"centroids\.npy: checksum mismatch"):
        load_state(path)


def test_missing_file_and_missing_manifest(saved, tmp_path):
    path, _ = saved
    (path / "raw.bin").unlink()
    with pytest.raises(StateError, match=r"raw\.bin: missing"):
        load_state(path)
    with pytest.raises(StateError, match="no manifest.json"):
        load_state(tmp_path)


def test_corrupted_manifest(saved):
    path, _ = saved
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(StateError, match="corrupted manifest"):
        load_state(path)


def test_foreign_state_is_rejected(saved):
    with pytest.raises(StateError, match="expected name 'pq'"):
        load_state(saved[0], kind="compressor", name="pq")
    with pytest.raises(StateError, match="expected kind 'index'"):
        load_state(saved[0], kind="index")


def test_object_arrays_are_refused_and_nothing_is_left_behind(tmp_path):
    with pytest.raises(StateError, match="pickle"):
        save_state(tmp_path / "s", Toy(), {"bad": np.array([{"a": 1}], dtype=object)})
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_atomically(saved, tmp_path):
    path, _ = saved
    save_state(path, Toy(bits=2), {"x": np.ones(2)})
    state = load_state(path)
    assert set(state.arrays) == {"x"} and state.config == {"bits": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["state"]


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    target = tmp_path / "precious"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    with pytest.raises(StateError, match="refusing to overwrite"):
        save_state(target, Toy(), {"x": np.ones(2)})
    assert (target / "notes.txt").read_text() == "keep me"


def test_fingerprint_changes_with_config():
    assert Toy(bits=4).fingerprint == Toy(bits=4).fingerprint
    assert Toy(bits=4).fingerprint != Toy(bits=8).fingerprint
    assert embedlab.describe(Toy(bits=4))["config"] == {"bits": 4}


def test_fields_marked_not_identity_stay_out_of_the_fingerprint():
    from embedlab.components import NOT_IDENTITY

    class Threaded(embedlab.Component):
        kind = "encoder"
        name = "threaded"

        @attrs.frozen
        class Config:
            dim: int = 8
            num_threads: int | None = attrs.field(default=None, metadata=NOT_IDENTITY)

    assert Threaded(num_threads=1).fingerprint == Threaded(num_threads=2).fingerprint
    assert Threaded(dim=4).fingerprint != Threaded(dim=8).fingerprint
    assert embedlab.describe(Threaded(num_threads=2))["config"] == {"dim": 8, "num_threads": 2}
