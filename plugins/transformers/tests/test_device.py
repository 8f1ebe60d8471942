"""Where the model runs: ``device`` is explicit, resolved before the weights load, and no part of
the fingerprint (cache keys do not change with it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from embedlab_transformers import MiniLM
from embedlab_transformers.backends import resolve_device

import embedlab
from embedlab.errors import ConfigError


def test_auto_resolves_to_cuda_only_on_the_torch_backend_with_a_cuda_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert [resolve_device(d, "torch") for d in ("cpu", "cuda", "auto")] == ["cpu", "cuda", "cuda"]
    assert resolve_device("auto", "onnx-int8") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert [resolve_device(d, "torch") for d in ("cpu", "auto")] == ["cpu", "cpu"]
    with pytest.raises(ConfigError, match="device='cuda' but torch sees no CUDA device.*CUDA_VISIBLE_DEVICES"):
        resolve_device("cuda", "torch")
    with pytest.raises(ConfigError, match="device='cuda' needs backend='torch'"):
        resolve_device("cuda", "onnx")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour where torch sees no CUDA device")
def test_without_cuda_cuda_is_an_error_and_auto_encodes_on_the_cpu(minilm, queries, opts) -> None:
    with pytest.raises(ConfigError, match="torch sees no CUDA device"):
        MiniLM(device="cuda", **opts).encode_queries(["a claim"])
    auto = MiniLM(device="auto", **opts)
    assert auto.device == "cpu" and minilm.device == "cpu"
    assert np.array_equal(auto.encode_queries(queries[:4]), minilm.encode_queries(queries[:4]))
    assert embedlab.fingerprint(auto) == embedlab.fingerprint(minilm)
    with pytest.raises((ConfigError, ValueError), match="device"):
        MiniLM(device="gpu")
