"""Streamed, resumable encoding (embedlab.shards), the cache's chunked entries and chunked index
builds: a killed encode resumes from the last finished chunk with bit-identical vectors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.errors import InvalidInputError, StateError
from embedlab.hashing import HashingEncoder
from embedlab.index import ExactIndex
from embedlab.pipeline import Pipeline
from embedlab.pq_compressor import PQCompressor
from embedlab.shards import ChunkStore, encode_chunks

TEXTS = [f"document {i} about topic {i % 7} and word{i % 13} plus w{i % 29}" for i in range(230)]


class Counting:
    """Wraps an encode function, counting texts; fails on demand after ``fail_after`` calls."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.encoder = HashingEncoder(dim=16)
        self.texts = 0
        self.calls = 0
        self.fail_after = fail_after

    def __call__(self, texts: list[str]) -> np.ndarray:
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("encoder died")
        self.calls += 1
        self.texts += len(texts)
        return self.encoder.encode_documents(texts)


def test_chunks_hold_the_same_vectors_as_one_call(tmp_path: Path) -> None:
    encode = Counting()
    store = encode_chunks(ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50), TEXTS, encode, progress=False)
    assert store.n_chunks == 5 and encode.calls == 5 and store.finished() == [0, 1, 2, 3, 4]
    expected = HashingEncoder(dim=16).encode_documents(TEXTS)
    assert np.array_equal(store.gather(), expected)
    positions = np.array([0, 49, 50, 120, 229])
    assert np.array_equal(store.take(positions), expected[positions])
    assert [start for start, _ in store.chunks()] == [0, 50, 100, 150, 200]
    assert store.dim == 16 and store.kind is embedlab.EmbeddingKind.DENSE


def test_a_failed_run_resumes_after_the_last_finished_chunk(tmp_path: Path) -> None:
    store = ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50)
    with pytest.raises(RuntimeError, match="encoder died"):
        encode_chunks(store, TEXTS, Counting(fail_after=2), progress=False)
    assert store.finished() == [0, 1] and not store.complete
    with pytest.raises(StateError, match="3 of 5 chunks are not encoded"):
        store.gather()
    resumed = Counting()
    encode_chunks(store, TEXTS, resumed, progress=False)
    assert resumed.texts == 130  # chunks 2, 3, 4 only
    assert np.array_equal(store.gather(), HashingEncoder(dim=16).encode_documents(TEXTS))


def test_a_corrupted_chunk_is_encoded_again(tmp_path: Path) -> None:
    store = encode_chunks(ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50), TEXTS, Counting(),
                          progress=False)
    vectors = store.chunk_path(3) / "dense.npy"
    raw = bytearray(vectors.read_bytes())
    raw[-5] ^= 0xFF
    vectors.write_bytes(bytes(raw))
    again = Counting()
    with pytest.warns(UserWarning, match="chunk-000003.*checksum"):
        encode_chunks(store, TEXTS, again, progress=False)
    assert again.calls == 1 and again.texts == 50
    assert np.array_equal(store.gather(), HashingEncoder(dim=16).encode_documents(TEXTS))


def test_a_directory_of_another_job_is_refused(tmp_path: Path) -> None:
    ChunkStore.open(tmp_path / "job", "first", len(TEXTS), 50)
    with pytest.raises(StateError, match="another encoding job"):
        ChunkStore.open(tmp_path / "job", "second", len(TEXTS), 50)
    with pytest.raises(StateError, match="another encoding job"):
        ChunkStore.open(tmp_path / "job", "first", len(TEXTS), 60)
    with pytest.raises(InvalidInputError, match="230 texts for a job of 10"):
        encode_chunks(ChunkStore.open(tmp_path / "other", "j", 10, 5), TEXTS, Counting(), progress=False)
    with pytest.raises(InvalidInputError, match="nothing to encode"):
        ChunkStore.open(tmp_path / "empty", "j", 0, 5)


@pytest.mark.parametrize("record", ["[1, 2]", "null", "[" * 5000 + "]" * 5000, "\xff", '{"job": 5}',
                                    '{"job": "j", "n_items": "230", "chunk_size": 50}',
                                    '{"job": "j", "n_items": 230, "chunk_size": 0}'])
def test_a_forged_job_record_is_a_state_error(tmp_path: Path, record: str) -> None:
    """Before: valid JSON of the wrong structure raised AttributeError, deep nesting RecursionError."""
    ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50)
    (tmp_path / "job" / "job.json").write_bytes(record.encode("utf-8", "surrogateescape"))
    with pytest.raises(StateError, match="job.json"):
        ChunkStore.read(tmp_path / "job")
    with pytest.raises(StateError, match="job.json|another encoding job"):
        ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50)


@pytest.mark.parametrize("meta", [{"embedding_kind": "nonsense"}, {"embedding_kind": "dense", "seconds": "slow"}])
def test_a_forged_chunk_manifest_is_a_state_error(tmp_path: Path, meta: dict) -> None:
    """Before: an unknown embedding kind in chunk 0 raised ValueError, a text ``seconds`` TypeError."""
    import json

    store = encode_chunks(ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50), TEXTS, Counting(),
                          progress=False)
    manifest = store.chunk_path(0) / "manifest.json"
    data = json.loads(manifest.read_text())
    data["meta"].update(meta)
    manifest.write_text(json.dumps(data))
    with pytest.raises(StateError, match="chunk-000000"):
        store.seconds() if "seconds" in meta else store.gather()
    manifest.write_text("[]")
    with pytest.raises(StateError, match="chunk-000000.*manifest"):
        store.seconds()


def test_temporary_directories_of_a_dead_writer_are_removed(tmp_path: Path) -> None:
    store = ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50)
    stale = store.root / ".chunk-000002.tmp-deadbeef"
    stale.mkdir()
    (stale / "dense.npy").write_bytes(b"partial")
    encode_chunks(store, TEXTS, Counting(), progress=False)
    assert not stale.exists()
    expected = [f"chunk-{i:06d}" for i in range(5)] + ["job.json", "job.lock"]
    assert sorted(p.name for p in store.root.iterdir()) == expected


KILLED_ENCODE = textwrap.dedent("""
    import sys, time
    from embedlab.hashing import HashingEncoder
    from embedlab.shards import ChunkStore, encode_chunks
    texts = [f"document {i} about topic {i % 7} and word{i % 13} plus w{i % 29}" for i in range(230)]
    encoder = HashingEncoder(dim=16)
    def slow(batch):
        time.sleep(0.3)
        return encoder.encode_documents(batch)
    encode_chunks(ChunkStore.open(sys.argv[1], "j", len(texts), 20), texts, slow, progress=False)
""")


def test_kill_9_mid_encode_then_resume_gives_bit_identical_vectors(tmp_path: Path) -> None:
    root = tmp_path / "job"
    script = tmp_path / "encode.py"
    script.write_text(KILLED_ENCODE)
    process = subprocess.Popen([sys.executable, str(script), str(root)])
    try:
        deadline = time.monotonic() + 60
        while not (root / "chunk-000002").is_dir():
            assert process.poll() is None, "the encoding process ended before it was killed"
            assert time.monotonic() < deadline, "no chunk was written within 60 s"
            time.sleep(0.02)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    store = ChunkStore.open(root, "j", len(TEXTS), 20)
    done = store.finished()
    assert 3 <= len(done) < store.n_chunks and done == list(range(len(done)))
    resumed = Counting()
    encode_chunks(store, TEXTS, resumed, progress=False)
    assert resumed.calls == store.n_chunks - len(done)
    assert np.array_equal(store.gather(), HashingEncoder(dim=16).encode_documents(TEXTS))
    assert not list(root.glob(".chunk-*"))


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_exact_index_from_chunks_equals_a_build_from_memory(tmp_path: Path, metric: str) -> None:
    store = encode_chunks(ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50), TEXTS, Counting(),
                          progress=False)
    streamed, direct = ExactIndex(metric=metric, block_size=64), ExactIndex(metric=metric, block_size=64)
    years = np.arange(len(TEXTS)) % 5
    streamed.build_from_chunks(store, {"year": years})
    direct.build(store.gather(), {"year": years})
    queries = HashingEncoder(dim=16).encode_queries(["topic 3 word5", "document 17", "w11 plus"])
    for kwargs in ({}, {"filter": {"year": 2}}):
        a, b = streamed.search(queries, 10, **kwargs), direct.search(queries, 10, **kwargs)
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert streamed.memory_bytes == direct.memory_bytes


def corpus(n: int) -> embedlab.Corpus:
    return embedlab.Corpus(ids=[f"d{i}" for i in range(n)], texts=TEXTS[:n])


QUERIES = embedlab.Queries(ids=["q1", "q2"], texts=["topic 3 word5", "document 17 w11"])


@pytest.mark.parametrize("compressor", [None, {"name": "pq", "m": 4, "ksub": 16}])
def test_a_pipeline_over_chunks_ranks_like_one_in_memory(tmp_path: Path, compressor) -> None:
    def pipeline(chunk_size: int) -> Pipeline:
        return Pipeline.from_names(encoder={"name": "hashing", "dim": 16}, index="exact", compressor=compressor,
                                   cache=EmbeddingCache(tmp_path / f"cache-{chunk_size}"), chunk_size=chunk_size,
                                   fit_sample=100, progress=False)
    chunked, whole = pipeline(40), pipeline(10_000)
    chunked.build(corpus(230))
    whole.build(corpus(230))
    assert list((tmp_path / "cache-40").rglob("*.chunks")) and not list((tmp_path / "cache-10000").rglob("*.chunks"))
    a, b = chunked.search(QUERIES, 20), whole.search(QUERIES, 20)
    assert np.array_equal(a.doc_ids, b.doc_ids) and np.array_equal(a.scores, b.scores)
    again = pipeline(40)
    again.build(corpus(230))
    assert again.timings.cache_hits == 1 and again.timings.encode_documents_s == chunked.timings.encode_documents_s
    if compressor is not None:
        assert isinstance(chunked.compressor, PQCompressor)
        assert chunked.index.memory_bytes == whole.index.memory_bytes < 230 * 16 * 4


def test_pipeline_without_cache_encodes_in_memory(tmp_path: Path) -> None:
    pipeline = Pipeline.from_names(encoder={"name": "hashing", "dim": 16}, chunk_size=10, progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pipeline.build(corpus(50))
    assert len(pipeline.index) == 50


def test_take_reads_rows_and_columns_chunk_by_chunk(tmp_path: Path) -> None:
    store = encode_chunks(ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50), TEXTS, Counting(),
                          progress=False)
    everything = store.gather()
    positions = np.array([0, 3, 49, 50, 51, 120, 229])
    np.testing.assert_array_equal(store.take(positions), everything[positions])
    np.testing.assert_array_equal(store.take(positions, columns=slice(4, 12)), everything[positions, 4:12])
    buffer = np.zeros((len(positions), 8), np.float32)
    assert store.take(positions, columns=slice(4, 12), out=buffer) is buffer
    np.testing.assert_array_equal(buffer, everything[positions, 4:12])
    with pytest.raises(InvalidInputError, match="needs shape"):
        store.take(positions, columns=slice(4, 12), out=np.zeros((len(positions), 9), np.float32))
    with pytest.raises(InvalidInputError, match="sorted positions"):
        store.take(positions[::-1])
    with pytest.raises(InvalidInputError, match="no positions"):
        store.take(np.array([], dtype=np.int64))


@pytest.mark.parametrize("metric", ["ip", "l2"])
@pytest.mark.parametrize("compressed", [False, True])
def test_chunks_are_indexed_in_released_sub_blocks(tmp_path: Path, monkeypatch, metric: str, compressed: bool) -> None:
    """``build_from_chunks`` reads each memory-mapped chunk ``FILL_BLOCK`` rows at a time and
    releases each block's pages; the index equals one built from memory."""
    from embedlab.index import stores

    released: list[tuple[int, bool]] = []
    monkeypatch.setattr(stores, "FILL_BLOCK", 16)
    monkeypatch.setattr(stores, "release_mapped", lambda block: released.append((len(block), hasattr(block, "_mmap"))))
    store = encode_chunks(ChunkStore.open(tmp_path / "job", "j", len(TEXTS), 50), TEXTS, Counting(),
                          progress=False)
    pq = PQCompressor(m=4, ksub=16, iterations=2).fit(store.gather()) if compressed else None
    streamed, direct = ExactIndex(metric=metric, block_size=64), ExactIndex(metric=metric, block_size=64)
    if pq is not None:
        streamed.use_compressor(pq)
        direct.use_compressor(pq)
    streamed.build_from_chunks(store)
    direct.build(store.gather())
    assert [n for n, _ in released] == [16, 16, 16, 2] * 4 + [16, 14] and all(mapped for _, mapped in released)
    queries = HashingEncoder(dim=16).encode_queries(["topic 3 word5", "document 17", "w11 plus"])
    a, b = streamed.search(queries, 10), direct.search(queries, 10)
    assert np.array_equal(a.indices, b.indices) and np.array_equal(a.scores, b.scores)
    assert streamed.memory_bytes == direct.memory_bytes


def _rss_file_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1])
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from Linux's /proc")
def test_release_mapped_drops_the_pages_of_a_mapped_block(tmp_path: Path) -> None:
    from embedlab.state_checks import read_npy, release_mapped

    values = np.arange(8 << 20, dtype=np.float32).reshape(-1, 256)  # 32 MiB
    np.save(tmp_path / "a.npy", values)
    mapped = read_npy(tmp_path / "a.npy", mmap=True)
    before = _rss_file_kib()
    assert float(mapped[:, 0].sum()) == float(values[:, 0].sum())  # touches every page
    touched = _rss_file_kib()
    assert touched - before > 24 << 10
    for start in range(0, len(mapped), 4096):
        release_mapped(mapped[start:start + 4096])
    assert touched - _rss_file_kib() > 24 << 10
    assert np.array_equal(mapped[5000:5002], values[5000:5002])  # still readable (read again)
    copy = np.array(values[:8])
    release_mapped(copy)  # not mapped: a no-op
    assert np.array_equal(copy, values[:8])
