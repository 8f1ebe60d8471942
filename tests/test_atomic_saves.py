"""Atomic publishing of saved states: kills at any step leave the old or the new state, never
neither or a mix; temporaries of killed saves are cleaned; clear errors for bad targets."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab import atomic
from embedlab.crashtest import assert_atomic_saves, killed_save
from embedlab.errors import StateError
from embedlab.index import ExactIndex
from embedlab.persistence import load_state, save_state

FACTORIES = Path(__file__).parent / "crash" / "factories.py"


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    """Process kills do not need fsync (only power loss does); it only slows these tests."""
    monkeypatch.setenv(atomic.FSYNC_ENV, "0")


@pytest.fixture(scope="module")
def factories():
    import runpy

    return runpy.run_path(str(FACTORIES))


def small(version: int) -> ExactIndex:
    index = ExactIndex()
    index.build(np.full((3, 2), version, np.float32))
    return index


def test_kill_at_any_step_of_a_composite_save_leaves_old_or_new(factories, tmp_path):
    counts = assert_atomic_saves(factories["exact_pq"], factories["probe"], tmp_path, points=10, load=ExactIndex.load)
    assert counts["temporaries"]  # killed saves did leave them; the next saves removed them


def test_a_nested_part_is_written_inside_the_parent_and_pinned(factories, tmp_path):
    factories["exact_pq"](1, n=200).save(tmp_path / "s")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert set(manifest["parts"]) == {"compressor"}
    small(1).save(tmp_path / "other")
    (tmp_path / "s" / "compressor").rename(tmp_path / "old-compressor")
    factories["exact_pq"](2, n=200)._compressor.save(tmp_path / "s" / "compressor")
    with pytest.raises(StateError, match="compressor/manifest.json: not the part saved with"):
        embedlab.load_component(tmp_path / "s")


def test_stale_temporaries_are_removed_but_not_a_live_writers(tmp_path):
    small(1).save(tmp_path / "s")
    dead = tmp_path / f".s.tmp-{'a' * 32}"
    aside = tmp_path / f".s.old-{'b' * 32}"
    live = tmp_path / f".s.tmp-{'c' * 32}"
    empty = tmp_path / f".s.tmp-{'d' * 32}"
    for folder in (dead, aside, live):
        folder.mkdir()
        (folder / "vectors.npy").write_bytes(b"x" * 100)
    empty.mkdir()
    other = tmp_path / f".t.tmp-{'e' * 32}"
    other.mkdir()
    (other / "x").write_text("another target's temporary")
    lock = os.open(live, os.O_RDONLY)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        small(2).save(tmp_path / "s")
        assert not dead.exists() and not aside.exists() and not empty.exists()
        assert live.exists() and other.exists()
    finally:
        os.close(lock)
    small(3).save(tmp_path / "s")
    assert not live.exists() and other.exists()


def test_a_writer_whose_new_staging_directory_was_cleaned_takes_another(tmp_path, monkeypatch):
    """A cleaner may remove a staging directory between the writer's mkdir and flock."""
    real = atomic._DirLock.__init__
    removed = []

    def racing(self, path, *, blocking):
        if ".s.tmp-" in path.name and not removed:  # another writer cleans it right now
            path.rmdir()
            removed.append(path)
        real(self, path, blocking=blocking)

    monkeypatch.setattr(atomic._DirLock, "__init__", racing)
    small(1).save(tmp_path / "s")
    assert removed and [p.name for p in tmp_path.iterdir()] == ["s"]


def test_save_onto_a_file_a_file_parent_or_an_overlong_name_is_a_clear_error(tmp_path):
    (tmp_path / "plain").write_text("keep me")
    with pytest.raises(StateError, match="plain: exists and is a file"):
        small(1).save(tmp_path / "plain")
    assert (tmp_path / "plain").read_text() == "keep me"
    with pytest.raises(StateError, match="a parent path exists and is not a directory"):
        small(1).save(tmp_path / "plain" / "state")
    with pytest.raises(StateError, match="file name is 300 bytes long; this file system allows 255"):
        small(1).save(tmp_path / ("x" * 300))
    small(1).save(tmp_path / ("y" * 250))  # fits, although its temporaries' names would not
    assert load_state(tmp_path / ("y" * 250)).manifest["name"] == "exact"
    with pytest.raises(StateError, match="invalid state file name"):
        save_state(tmp_path / "s", small(1), arrays={"z" * 250: np.zeros(1)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain", "y" * 250]


def test_a_write_error_leaves_the_old_state_and_no_temporary(tmp_path, monkeypatch):
    small(1).save(tmp_path / "s")

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    with pytest.raises(StateError, match=r"s: cannot write \(No space left on device; errno 28\)"):
        small(2).save(tmp_path / "s")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
    assert ExactIndex.load(tmp_path / "s").search(np.ones((1, 2)), 1).scores[0, 0] == 2.0


def test_without_rename_exchange_a_kill_between_renames_is_recovered(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "_EXCHANGE", None)
    small(1).save(tmp_path / "s")
    small(2).save(tmp_path / "s")  # the fallback publish: old aside, new in, old removed
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
    assert ExactIndex.load(tmp_path / "s").search(np.ones((1, 2)), 1).scores[0, 0] == 4.0
    # a writer killed between its two renames leaves the old state aside and nothing at "s"
    aside = tmp_path / f".s.old-{'f' * 32}"
    os.rename(tmp_path / "s", aside)
    assert ExactIndex.load(tmp_path / "s").search(np.ones((1, 2)), 1).scores[0, 0] == 4.0
    assert [p.name for p in tmp_path.iterdir()] == ["s"]


def test_every_step_is_fsynced(tmp_path, monkeypatch):
    monkeypatch.setenv(atomic.FSYNC_ENV, "1")
    synced = []
    real = os.fsync

    def fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    small(1).save(tmp_path / "s")
    staged = {Path(p).name for p in synced if ".s.tmp-" in p}
    assert {"vectors.npy", "manifest.json"} <= staged  # every file, in the staging directory
    assert any(Path(p).name.startswith(".s.tmp-") for p in synced)  # the staging directory itself
    assert synced[-1] == str(tmp_path)  # and last the parent, after the rename


def test_killed_save_counts_steps(tmp_path):
    assert killed_save(small(1), tmp_path / "a", 1) == (True, 0)
    killed, steps = killed_save(small(1), tmp_path / "b", None)
    assert not killed and steps > 5 and (tmp_path / "b" / "manifest.json").is_file()


# -- one file: atomic_file / write_file_atomically ----------------------------------------------


def test_atomic_file_replaces_the_whole_file_or_nothing(tmp_path) -> None:
    target = tmp_path / "sub" / "rows.npy"
    with atomic.atomic_file(target) as handle:
        np.save(handle, np.arange(4), allow_pickle=False)
    np.testing.assert_array_equal(np.load(target), np.arange(4))
    with pytest.raises(RuntimeError, match="killed mid-write"):
        with atomic.atomic_file(target) as handle:
            handle.write(b"partial bytes")
            raise RuntimeError("killed mid-write")
    np.testing.assert_array_equal(np.load(target), np.arange(4))        # the old file, whole
    assert sorted(p.name for p in target.parent.iterdir()) == ["rows.npy"]  # no temporary left
    atomic.write_file_atomically(tmp_path / "t.json", '{"a": 1}')
    assert json.loads((tmp_path / "t.json").read_text(encoding="utf-8")) == {"a": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "t.json").stat().st_mode & 0o777 == 0o666 & ~umask   # as a plain open(path, "w")
    with pytest.raises(ValueError, match="mode"):
        with atomic.atomic_file(target, "ab"):
            pass


def test_atomic_file_errors_leave_the_target_and_no_temporary(tmp_path) -> None:
    (tmp_path / "dir-in-the-way").mkdir()
    with pytest.raises(OSError):
        atomic.write_file_atomically(tmp_path / "dir-in-the-way", b"x")
    assert (tmp_path / "dir-in-the-way").is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir-in-the-way"]
