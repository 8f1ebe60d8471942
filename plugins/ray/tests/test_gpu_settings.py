"""GPU actors and the encoder's device: checked on the driver before any actor starts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from embedlab_ray import RayExecutor

from embedlab.errors import ConfigError
from embedlab.shards import ChunkStore


def test_gpu_actors_refuse_an_encoder_set_to_the_cpu(tmp_path: Path) -> None:
    encoder = SimpleNamespace(name="minilm", config=SimpleNamespace(device="cpu"))
    store = ChunkStore.open(tmp_path / "job", "j", 3, 2)
    runner = RayExecutor(gpus_per_actor=1)
    with pytest.raises(ConfigError, match="gpus_per_actor=1 but encoder 'minilm' is set to device='cpu'"):
        runner.encode(encoder, ["a", "b", "c"], store, desc="encode", progress=False)
    assert not runner._started  # refused before Ray was started
