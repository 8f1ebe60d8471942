"""The OpenVINO backends: close to torch, deterministic, precision in the fingerprint, clear errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from embedlab_transformers import MiniLM, MiniLMTokens, openvino_backend

import embedlab
from embedlab.cache import EmbeddingCache
from embedlab.errors import ConfigError


@pytest.fixture(scope="module")
def texts(documents, queries) -> list[str]:
    """Long abstracts (truncated at 256 tokens), short claims and an empty text: batches of many lengths."""
    return [*documents, *queries, ""]


@pytest.fixture(scope="module")
def torch_vectors(minilm, texts) -> np.ndarray:
    return minilm.encode_documents(texts)


@pytest.fixture(scope="module")
def int8(opts) -> MiniLM:
    return MiniLM(backend="openvino-int8", **opts)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1)[:-1]  # the empty text's vector is only a [CLS]/[SEP] average


def test_int8_weights_stay_close_to_torch_and_really_are_int8(int8, texts, torch_vectors):
    vectors = int8.encode_documents(texts)
    cosine = cosines(vectors, torch_vectors)
    assert cosine.mean() >= 0.995 and cosine.min() >= 0.99  # measured 0.9994 / 0.9991 on SciFact
    assert not np.array_equal(vectors, torch_vectors)
    assert int8.loaded.backend.precision == openvino_backend.effective_precision("bf16")
    model, names = openvino_backend.convert(int8.model_dir, int8.tokenizer, 256,
                                            openvino_backend.OPENVINO_RECIPES["openvino-int8"])
    assert sorted(names) == ["attention_mask", "input_ids", "token_type_ids"]
    weights = [op.get_output_partial_shape(0).to_string() for op in model.get_ordered_ops()
               if op.get_type_name() == "Constant" and op.get_output_element_type(0).to_string() in ("i8", "u8")]
    # per layer: Q, K, V and output (384 x 384), FFN up (1536 x 384) and down (384 x 1536)
    assert (weights.count("[384,384]"), weights.count("[1536,384]"), weights.count("[384,1536]")) == (24, 6, 6)


def test_bf16_agrees_with_torch_to_four_nines(opts, texts, torch_vectors):
    cosine = cosines(MiniLM(backend="openvino-bf16", **opts).encode_documents(texts), torch_vectors)
    assert cosine.min() >= 0.9995  # measured 0.99997 with bf16 compute; float32 where the CPU has no bf16


def test_a_second_load_gives_identical_vectors(int8, opts, texts):
    again = MiniLM(backend="openvino-int8", **opts)
    assert np.array_equal(again.encode_documents(texts[:10]), int8.encode_documents(texts[:10]))


def test_token_vectors_follow_the_same_offsets_as_torch(opts, documents, queries):
    sample = [documents[1], *queries[:3]]
    reference = MiniLMTokens(**opts).encode_documents(sample)
    tokens = MiniLMTokens(backend="openvino-bf16", **opts).encode_documents(sample)
    np.testing.assert_array_equal(tokens.offsets, reference.offsets)
    assert (tokens.vectors * reference.vectors).sum(1).min() >= 0.999


def test_fingerprint_names_the_weights_and_the_precision_computed_in(monkeypatch, tmp_path):
    def key(backend: str) -> str:
        return EmbeddingCache(tmp_path).key(MiniLM(backend=backend, show_progress=False), "documents", "corpus")

    here = openvino_backend.effective_precision("bf16")
    assert MiniLM(backend="openvino-int8").state_fingerprint == (
        f"openvino, int8 weights (nncf int8_asym per channel), {here} compute")
    keys = {backend: key(backend) for backend in ("torch", "torch-bf16", "onnx-int8", "openvino-bf16", "openvino-int8")}
    assert len(set(keys.values())) == 5
    other = {"f32": frozenset({"FP32", "BF16"}), "bf16": frozenset({"FP32"})}[here]
    monkeypatch.setattr(openvino_backend, "cpu_capabilities", lambda: other)
    assert openvino_backend.effective_precision("bf16") != here
    assert key("openvino-int8") != keys["openvino-int8"]  # vectors of another precision are never reused
    assert key("torch") == keys["torch"]
    assert embedlab.fingerprint(MiniLM(backend="openvino-bf16")) != embedlab.fingerprint(MiniLM())


def test_without_openvino_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    encoder = MiniLM(backend="openvino-int8", show_progress=False)
    with pytest.raises(ConfigError, match=r"pip install 'embedlab-transformers\[openvino\]'"):
        encoder.encode_queries(["a claim"])


def test_openvino_runs_on_the_cpu_only(opts):
    with pytest.raises(ConfigError, match="device='cuda' needs backend='torch'"):
        MiniLM(backend="openvino-int8", device="cuda", **opts).encode_queries(["a claim"])
    with pytest.raises((ConfigError, ValueError), match="precision"):
        openvino_backend.OpenVinoRecipe(precision="int4", int8_weights=True)


def test_torch_bf16_autocast_agrees_with_float32_to_four_nines(minilm, opts, texts, torch_vectors):
    bf16 = MiniLM(backend="torch-bf16", **opts)
    vectors = bf16.encode_documents(texts)
    assert cosines(vectors, torch_vectors).min() >= 0.9995 and not np.array_equal(vectors, torch_vectors)
    assert bf16.state_fingerprint == "torch bfloat16 autocast" and minilm.state_fingerprint is None


def test_openvino_telemetry_is_declined_nothing_sent_nothing_written(monkeypatch, tmp_path, opts):
    """OpenVINO's converter sends usage events unless the user opted out (a machine with no consent
    file counts as consenting); the OpenVINO backends decline them for their own imports and conversions."""
    from openvino_telemetry.utils import sender
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    monkeypatch.delenv("CI", raising=False)  # CI=true alone would decline: test a user's machine
    monkeypatch.setenv("HOME", str(tmp_path))
    assert OptInChecker().check(False, disable_in_ci=True) == ConsentCheckResult.NO_FILE  # would send
    sent: list = []
    monkeypatch.setattr(sender.TelemetrySender, "send", lambda self, backend, message: sent.append(message))
    with openvino_backend.telemetry_declined():
        assert OptInChecker().check(False, disable_in_ci=True) == ConsentCheckResult.DECLINED
    assert MiniLM(backend="openvino-bf16", **opts).encode_queries(["a claim"]).shape == (1, 384)
    assert sent == [] and list(tmp_path.iterdir()) == []  # no event, no client id under ~/intel
