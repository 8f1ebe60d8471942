"""The embedding cache is optional and self-healing: concurrent fills, broken entries, a read-only
or full disk never stop a run."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from embedlab import atomic
from embedlab.cache import EmbeddingCache
from embedlab.embeddings import BinaryCodes, MultiVectorEmbeddings

VECTORS = np.arange(24, dtype=np.float32).reshape(6, 4)


@pytest.fixture(autouse=True)
def no_fsync(monkeypatch):
    monkeypatch.setenv(atomic.FSYNC_ENV, "0")


def _fill(root: str, keys: list[str], barrier, errors) -> None:
    cache = EmbeddingCache(root)
    for key in keys:
        barrier.wait()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # a concurrent fill must not even warn
                got = cache.get_or_compute(key, lambda: VECTORS).embeddings
            assert np.array_equal(got, VECTORS)
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            errors.put(f"{type(error).__name__}: {error}")


def test_processes_filling_the_same_entry_all_succeed(tmp_path):
    """Before: ``OSError: Directory not empty`` when a second writer renamed onto a fresh entry."""
    context = multiprocessing.get_context("fork")
    workers, keys = 4, [f"{i:02d}" + "ab" * 31 for i in range(25)]
    barrier, errors = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_fill, args=(str(tmp_path), keys, barrier, errors)) for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    failures = [errors.get() for _ in range(errors.qsize())] if not errors.empty() else []
    assert not failures and all(p.exitcode == 0 for p in processes), failures[:3]
    cache = EmbeddingCache(tmp_path)
    assert all(cache.get_or_compute(k, lambda: pytest.fail("recomputed")).hit for k in keys)
    assert not [p for p in tmp_path.rglob(".*")]  # no temporaries left behind


@pytest.mark.parametrize("damage", ["no manifest", "malformed manifest", "wrong structure", "file in place",
                                    "empty npy", "forged indices"])
def test_a_broken_entry_is_recomputed_with_a_warning_and_replaced(tmp_path, damage):
    cache = EmbeddingCache(tmp_path)
    sparse = sp.csr_matrix(VECTORS)
    cache.get_or_compute("k" * 64, lambda: sparse)
    path = cache.path("k" * 64)
    if damage == "no manifest":
        (path / "manifest.json").unlink()
    elif damage == "malformed manifest":
        (path / "manifest.json").write_text("{truncated")
    elif damage == "wrong structure":
        (path / "manifest.json").write_text('["a", "list"]')
    elif damage == "file in place":
        import shutil

        shutil.rmtree(path)
        path.write_text("not a directory")
    elif damage == "empty npy":
        from embedlab.testing import reseal

        (path / "indices.npy").write_bytes(b"")
        reseal(path)
    else:  # checksums recomputed, indices beyond the vocabulary: must not reach scipy
        from embedlab.testing import reseal

        np.save(path / "indices.npy", np.full(sparse.nnz, 10**6, dtype=np.int32))
        reseal(path)
    calls = []
    with pytest.warns(UserWarning, match="is unusable .*recomputing"):
        again = cache.get_or_compute("k" * 64, lambda: calls.append(1) or sparse)
    assert calls and not again.hit and (again.embeddings != sparse).nnz == 0
    healed = cache.get_or_compute("k" * 64, lambda: pytest.fail("recomputed twice"))
    assert healed.hit and (healed.embeddings != sparse).nnz == 0


@pytest.mark.parametrize("value", [VECTORS, MultiVectorEmbeddings(VECTORS, np.array([0, 2, 6])),
                                   BinaryCodes.from_signs(VECTORS - 10)])
def test_every_embedding_kind_round_trips(tmp_path, value):
    cache = EmbeddingCache(tmp_path)
    cache.get_or_compute("e" * 64, lambda: value)
    hit = cache.get_or_compute("e" * 64, lambda: pytest.fail("recomputed"))
    assert hit.hit and type(hit.embeddings) is type(value)


def test_an_unwritable_cache_warns_and_carries_on(tmp_path, monkeypatch):
    """Read-only file system (EROFS) as seen by every write: simulated, since this may run as root."""
    real_mkdir = os.mkdir

    def read_only(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", read_only)
    with pytest.warns(UserWarning, match="Read-only file system.*carrying on uncached"):
        result = EmbeddingCache(tmp_path / "cache").get_or_compute("r" * 64, lambda: VECTORS)
    assert np.array_equal(result.embeddings, VECTORS) and not result.hit


def test_a_full_disk_warns_carries_on_and_leaves_nothing_behind(tmp_path, monkeypatch):
    """ENOSPC on the first data write, simulated by a monkeypatched numpy.save (an unprivileged test
    cannot mount a tiny tmpfs)."""
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    cache = EmbeddingCache(tmp_path)
    with pytest.warns(UserWarning, match="No space left on device.*carrying on uncached"):
        result = cache.get_or_compute("f" * 64, lambda: VECTORS)
    assert np.array_equal(result.embeddings, VECTORS)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    assert not cache.get_or_compute("f" * 64, lambda: VECTORS).hit  # nothing half-written was kept
    assert cache.get_or_compute("f" * 64, lambda: VECTORS).hit


def _pipeline(cache: EmbeddingCache):
    from embedlab.hashing import HashingEncoder
    from embedlab.index import ExactIndex
    from embedlab.pipeline import Pipeline

    return Pipeline(encoder=HashingEncoder(dim=16), index=ExactIndex(), cache=cache, chunk_size=4, progress=False)


def _corpus():
    from embedlab.dataset import Corpus, Queries

    texts = [f"document {i} about {i % 3}" for i in range(10)]
    return Corpus([f"d{i}" for i in range(10)], texts), Queries(["q"], ["document about 2"])


def test_chunked_encoding_carries_on_uncached_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    corpus, queries = _corpus()
    reference = _pipeline(EmbeddingCache(tmp_path / "ok"))
    reference.build(corpus)
    monkeypatch.setattr(np, "save", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left")))
    pipeline = _pipeline(EmbeddingCache(tmp_path / "full"))
    with pytest.warns(UserWarning, match="cannot store the chunks .*carrying on uncached"):
        pipeline.build(corpus)
    assert pipeline.search(queries, 3).doc_ids.tolist() == reference.search(queries, 3).doc_ids.tolist()


def test_a_corrupted_chunk_job_record_is_encoded_again(tmp_path):
    corpus, queries = _corpus()
    cache = EmbeddingCache(tmp_path)
    _pipeline(cache).build(corpus)
    (record,) = tmp_path.rglob("job.json")
    record.write_text("{broken")
    pipeline = _pipeline(cache)
    with pytest.warns(UserWarning, match="job.json: corrupted job record.*encoding it again"):
        pipeline.build(corpus)
    assert json.loads(record.read_text())["n_items"] == 10 and len(pipeline.search(queries, 3).doc_ids[0]) == 3
