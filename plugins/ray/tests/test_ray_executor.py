"""The ray executor on a real two-node local cluster: identical rankings to the local executor,
an experiment file with ``executor = "ray"``, and a worker killed mid-run."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import ray
from embedlab_ray import RayExecutor, ShardedIndex
from embedlab_ray.executor import from_payload, to_payload
from ray import cloudpickle

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.experiment.config import parse_config
from embedlab.experiment.runner import run_experiment
from embedlab.hashing import HashingEncoder
from embedlab.pipeline import Pipeline

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers do not import the tests

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi".split()


def make_corpus(n: int) -> embedlab.Corpus:
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(WORDS, size=6)) for _ in range(n)]
    return embedlab.Corpus(ids=[f"d{i}" for i in range(n)], texts=texts,
                           attributes={"group": np.arange(n) % 3})


QUERIES = embedlab.Queries(ids=[f"q{i}" for i in range(6)],
                           texts=["alpha beta", "gamma", "delta zeta eta", "pi xi", "mu nu iota", "kappa"])


def executor(address: str, **params) -> RayExecutor:
    return RayExecutor(address=address, actors=2, cpus_per_actor=0.5, **params)


def build(tmp_path: Path, name: str, runner, n: int = 640, **options) -> Pipeline:
    pipeline = Pipeline.from_names(encoder={"name": "hashing", "dim": 32},
                                   index={"name": "exact", "block_size": 64}, cache=EmbeddingCache(tmp_path / name),
                                   chunk_size=64, executor=runner, progress=False, **options)
    pipeline.build(make_corpus(n))
    return pipeline


def test_payload_round_trip_without_pickle() -> None:
    import scipy.sparse as sp

    for value in (np.arange(6, dtype=np.float32).reshape(2, 3), sp.csr_matrix(np.eye(3, dtype=np.float32))):
        back = from_payload(to_payload(value))
        assert (back != value).nnz == 0 if sp.issparse(value) else np.array_equal(back, value)


def test_rankings_on_ray_equal_local_ones(ray_cluster: str, tmp_path: Path) -> None:
    local = build(tmp_path, "local", None)
    runner = executor(ray_cluster, shards=3)
    try:
        remote = build(tmp_path, "ray", runner)
        assert isinstance(remote.index, ShardedIndex) and remote.index.shards == 3
        for kwargs in ({}, {"filter": {"group": 1}}):
            a, b = local.search(QUERIES, 25, **kwargs), remote.search(QUERIES, 25, **kwargs)
            assert np.array_equal(a.doc_ids, b.doc_ids) and np.array_equal(a.scores, b.scores)
        mask = np.zeros(640, bool)
        mask[::7] = True
        a, b = local.index.search(local.encoder.encode_queries(["alpha"]), 10, filter=mask), \
            remote.index.search(local.encoder.encode_queries(["alpha"]), 10, filter=mask)
        assert np.array_equal(a.indices, b.indices)
        assert remote.index.memory_bytes == local.index.memory_bytes  # the same vectors, split in three
        chunks = sorted((tmp_path / "ray").rglob("chunk-*"))
        local_chunks = sorted((tmp_path / "local").rglob("chunk-*"))
        assert len(chunks) == len(local_chunks) == 10
        for x, y in zip(chunks, local_chunks):
            assert (x / "dense.npy").read_bytes() == (y / "dense.npy").read_bytes()
    finally:
        runner.close()
    assert not ray.is_initialized()


def test_experiment_file_with_executor_ray(ray_cluster: str, tmp_path: Path) -> None:
    text = f"""
[dataset]
name = "python-stdlib"

[experiment]
metrics = ["nDCG@10"]
executor = {{ name = "ray", address = "{ray_cluster}", actors = 2, cpus_per_actor = 0.5 }}

[[pipeline]]
name = "hashing"
encoder = {{ name = "hashing", dim = 64 }}
index = {{ name = "exact" }}
"""
    config = parse_config(text)
    assert config.executor["name"] == "ray"
    on_ray = run_experiment(config, cache=EmbeddingCache(tmp_path / "a"), progress=False)
    local = run_experiment(config, cache=EmbeddingCache(tmp_path / "b"), progress=False, executor="local")
    a, b = on_ray.outcomes[0], local.outcomes[0]
    assert np.array_equal(a.ranking.doc_ids, b.ranking.doc_ids)
    assert a.evaluation.aggregates == b.evaluation.aggregates
    assert not ray.is_initialized()


class SlowHashing(HashingEncoder):
    """Hashing encoder that records every call (time and process id) and lingers on the chunk
    that starts with ``trap`` so that a test can kill the worker in the middle of it."""

    name = "slow-hashing"
    calls_dir: str = ""
    trap: str = ""

    def encode_documents(self, texts):
        marker = "trap" if texts[0] == self.trap else "call"
        Path(self.calls_dir, f"{marker}-{time.time_ns()}-{os.getpid()}").touch()
        time.sleep(3.0 if marker == "trap" else 0.1)
        return super().encode_documents(texts)


def test_a_worker_killed_mid_encode_is_retried_and_the_result_is_identical(ray_cluster: str, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    calls.mkdir()
    corpus = make_corpus(1280)
    encoder = SlowHashing(dim=32)
    encoder.calls_dir, encoder.trap = str(calls), corpus.texts[64 * 7]  # chunk 7 of 20
    runner = executor(ray_cluster, max_restarts=2)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            pipeline = Pipeline(encoder=encoder, index=embedlab.create("index", "exact", block_size=64),
                                cache=EmbeddingCache(tmp_path / "killed"), chunk_size=64, executor=runner,
                                progress=False)
            pipeline.build(corpus)
            outcome["pipeline"] = pipeline
        except BaseException as error:  # reported by the main thread
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while not list(calls.glob("trap-*")):
            assert thread.is_alive(), outcome.get("error")
            assert time.monotonic() < deadline, "the trapped chunk was not reached within 180 s"
            time.sleep(0.05)
        victim = int(next(calls.glob("trap-*")).name.split("-")[2])
        os.kill(victim, signal.SIGKILL)  # in the middle of encoding chunk 7
        thread.join(timeout=300)
        assert not thread.is_alive(), "the run did not finish after the worker was killed"
        assert "error" not in outcome, outcome.get("error")
        assert len(list((tmp_path / "killed").rglob("chunk-*"))) == 20
        traps = sorted(calls.glob("trap-*"))
        assert len(traps) == 2 and traps[1].name.split("-")[2] != str(victim)  # retried in a new process
        local = Pipeline.from_names(encoder={"name": "hashing", "dim": 32}, index={"name": "exact", "block_size": 64},
                                    progress=False)
        local.build(corpus)
        a, b = local.search(QUERIES, 30), outcome["pipeline"].search(QUERIES, 30)
        assert np.array_equal(a.doc_ids, b.doc_ids) and np.array_equal(a.scores, b.scores)
    finally:
        runner.close()


def test_a_sharded_index_saved_from_ray_loads_locally_and_onto_ray(ray_cluster: str, tmp_path: Path) -> None:
    from embedlab.errors import StateError

    local = build(tmp_path, "local", None)
    runner = executor(ray_cluster, shards=3)
    try:
        remote = build(tmp_path, "ray", runner)
        remote.index.save(tmp_path / "saved")  # each shard written by its actor
        remote.index.close()  # frees its actors' CPUs for the loaded ones
        queries = local.encoder.encode_queries(list(QUERIES.texts))
        expected = local.index.search(queries, 25, filter={"group": 1})
        here = ShardedIndex.load(tmp_path / "saved")
        again = runner.load_index(tmp_path / "saved")
        assert (here.on_ray, again.on_ray, here.shards, again.shards) == (False, True, 3, 3)
        for loaded in (here, again):
            found = loaded.search(queries, 25, filter={"group": 1})
            assert np.array_equal(found.indices, expected.indices) and np.array_equal(found.scores, expected.scores)
        again.close()
        shard = tmp_path / "saved" / "shard-00002"
        victim = max(shard.glob("*.npy"), key=lambda p: p.stat().st_size)
        data = bytearray(victim.read_bytes())
        data[-3] ^= 0x55
        victim.write_bytes(bytes(data))
        with pytest.raises(StateError, match="shard-00002.*checksum mismatch"):  # raised on the actor
            runner.load_index(tmp_path / "saved")
    finally:
        runner.close()
    assert not ray.is_initialized()


class GpuProbe(HashingEncoder):
    """Hashing encoder that records, for every chunk, the node, the GPU ids Ray gave its actor and
    the CUDA_VISIBLE_DEVICES that Ray set there."""

    name = "gpu-probe"
    calls_dir: str = ""

    def encode_documents(self, texts):
        import json

        record = {"node": ray.get_runtime_context().get_node_id(), "gpus": [str(g) for g in ray.get_gpu_ids()],
                  "cuda": os.environ.get("CUDA_VISIBLE_DEVICES")}
        Path(self.calls_dir, f"{time.time_ns()}-{os.getpid()}.json").write_text(json.dumps(record))
        return super().encode_documents(texts)


def test_gpu_actors_run_on_the_node_with_a_gpu(ray_cluster: str, tmp_path: Path) -> None:
    """The test worker declares one logical GPU (``ray start --num-gpus 1``; there is no CUDA
    here): ``gpus_per_actor=1`` puts the encoder actor there, with the GPU id and
    CUDA_VISIBLE_DEVICES a CUDA encoder would use; an encoder without a device setting warns."""
    import json

    calls = tmp_path / "calls"
    calls.mkdir()
    encoder = GpuProbe(dim=32)
    encoder.calls_dir = str(calls)
    runner = RayExecutor(address=ray_cluster, actors=1, cpus_per_actor=0.5, gpus_per_actor=1)
    corpus = make_corpus(256)
    try:
        pipeline = Pipeline(encoder=encoder, index=embedlab.create("index", "exact", block_size=64),
                            cache=EmbeddingCache(tmp_path / "gpu"), chunk_size=64, executor=runner, progress=False)
        with pytest.warns(UserWarning, match="no device setting and encodes on the CPU"):
            pipeline.build(corpus)
        gpu_nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"] and node["Resources"].get("GPU")}
        records = [json.loads(path.read_text()) for path in calls.iterdir()]
        assert len(gpu_nodes) == 1 and len(records) == 4
        assert all(r["node"] in gpu_nodes and r["gpus"] == ["0"] and r["cuda"] == "0" for r in records), records
        local = Pipeline.from_names(encoder={"name": "hashing", "dim": 32}, index={"name": "exact", "block_size": 64},
                                    progress=False)
        local.build(corpus)
        a, b = local.search(QUERIES, 20), pipeline.search(QUERIES, 20)
        assert np.array_equal(a.doc_ids, b.doc_ids) and np.array_equal(a.scores, b.scores)
    finally:
        runner.close()
