"""embedlab-ray: the ``ray`` executor (encoding on Ray Data actor pools, one index per shard on
Ray actors, queries fanned out to the shards and merged exactly)."""

from __future__ import annotations

import embedlab
from embedlab_ray.executor import RayExecutor
from embedlab_ray.sharded import ShardedIndex

EMBEDLAB_API_VERSION = "1.1"


@embedlab.hookimpl
def embedlab_register(registry) -> None:  # type: ignore[no-untyped-def]
    """Register the ``ray`` executor (kind ``executor``, declared by the core)."""
    registry.add("executor", "ray", RayExecutor)


__all__ = ["EMBEDLAB_API_VERSION", "RayExecutor", "ShardedIndex", "embedlab_register"]
