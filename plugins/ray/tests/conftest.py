"""One real local Ray cluster for the whole test session: a head node and one extra worker node
started with ``ray start`` (as a user would), torn down at the end by their process groups only."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 180
# Ray 2.60's `ray start --head` turns token authentication on by default; this test driver then failed
# with InvalidAuthToken until the fixture timed out (CI, 2026-12-06). The test cluster is a throwaway
# one on this machine, so nodes and driver run with authentication off.
CLUSTER_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], log: Path) -> subprocess.Popen:
    """``ray start ... --block`` in its own process group (so teardown stops exactly this node)."""
    handle = open(log, "wb")
    command = [RAY, "start", "--block", "--disable-usage-stats", "--num-cpus=2", *args]
    return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                            start_new_session=True, env={**os.environ, **CLUSTER_ENV})


def _wait_for_nodes(address: str, count: int, nodes: list[subprocess.Popen], logs: list[Path]) -> None:
    import ray

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        for node, log in zip(nodes, logs):
            if node.poll() is not None:
                raise RuntimeError(f"ray node exited early:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
            alive = [n for n in ray.nodes() if n["Alive"]]
            ray.shutdown()
            if len(alive) >= count:
                return
        except (ConnectionError, RuntimeError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the local Ray cluster did not reach {count} nodes in {START_TIMEOUT_S} s")
        time.sleep(1)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """Address of a running two-node local cluster (head + worker, 2 logical CPUs each; the worker
    also declares one logical GPU, so that GPU actors can be scheduled although there is no CUDA)."""
    temp = Path(tempfile.mkdtemp(prefix="elray", dir="/tmp"))  # short: Ray's socket paths are limited
    address = f"127.0.0.1:{_free_port()}"
    logs = [temp / "head.log", temp / "worker.log"]
    head = ["--head", "--include-dashboard=false", f"--port={address.split(':')[1]}", f"--temp-dir={temp}"]
    saved = {name: os.environ.get(name) for name in CLUSTER_ENV}
    os.environ.update(CLUSTER_ENV)  # the driver (this process) must match the nodes
    nodes = [_start(head, logs[0])]
    try:
        _wait_for_nodes(address, 1, nodes, logs[:1])
        nodes.append(_start([f"--address={address}", "--num-gpus=1"], logs[1]))  # a logical GPU
        _wait_for_nodes(address, 2, nodes, logs)
        yield address
    finally:
        for node in reversed(nodes):
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGTERM)
        for node in reversed(nodes):
            try:
                node.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(node.pid, signal.SIGKILL)
                node.wait()
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
