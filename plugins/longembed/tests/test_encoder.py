"""The ``longembed`` encoder: short inputs bit-identical to MiniLM, long ones read past the window."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_longembed import LongEmbedEncoder
from embedlab_longembed.positions import parallel_windows
from embedlab_transformers import MiniLM

import embedlab
from embedlab import Pipeline
from embedlab.errors import ConfigError

SHORT = ["a short query about prions", "Another short text.", "what is the passkey for Ada Yilmaz?"]
WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def long_text(n_words: int, ending: str) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words)) + " " + ending


@pytest.fixture(scope="module")
def encoders(small) -> dict:
    """One encoder per method sharing one loaded base model (loading it once keeps the suite fast)."""
    first = LongEmbedEncoder(method="truncate", **small)
    out = {"truncate": first}
    for method in ("pcw", "gp", "rp", "pi"):
        encoder = LongEmbedEncoder(method=method, **small)
        encoder.base = first.base
        out[method] = encoder
    return out


def test_short_inputs_are_bit_identical_to_minilm() -> None:
    base = MiniLM(backend="torch", num_threads=1, show_progress=False)
    expected = base.encode_documents(SHORT)
    for method in ("pcw", "gp", "rp", "pi"):
        encoder = LongEmbedEncoder(method=method, num_threads=1, show_progress=False)
        encoder.base = base  # the same loaded model: the default base is MiniLM(backend="torch")
        assert encoder.base.config == MiniLM(backend="torch", num_threads=1, show_progress=False).config
        np.testing.assert_array_equal(encoder.encode_documents(SHORT), expected)
        np.testing.assert_array_equal(encoder.encode_queries(SHORT), base.encode_queries(SHORT))


def test_long_inputs_are_read_past_the_window(encoders) -> None:
    a, b = long_text(60, "zebra zebra."), long_text(60, "quantum physics.")
    for method, encoder in encoders.items():
        va, vb = encoder.encode_documents([a, b])
        assert np.isclose(np.linalg.norm(va), 1.0, atol=1e-5)
        if method == "truncate":
            np.testing.assert_array_equal(va, vb)  # the endings are past 32 tokens: cut
        else:
            assert float(va @ vb) < 0.999, method  # the ending changes the vector


def test_position_methods_differ_from_each_other(encoders) -> None:
    text = [long_text(100, "end.")]
    vectors = {m: e.encode_documents(text)[0] for m, e in encoders.items()}
    for m1 in vectors:
        for m2 in vectors:
            if m1 < m2:
                assert not np.array_equal(vectors[m1], vectors[m2]), (m1, m2)


def test_pcw_is_the_mean_of_its_windows(encoders, small) -> None:
    """Reference: the unnormalised MiniLM vectors of each window's text, averaged, normalised."""
    encoder = encoders["pcw"]
    text = long_text(70, "final words.")
    tokens = encoder.base.tokenizer(text, add_special_tokens=False)["input_ids"]
    windows = parallel_windows(len(tokens), small["original_length"] - 2)
    assert len(windows) >= 3
    pieces = [encoder.base.tokenizer.decode(tokens[a:b]) for a, b in windows]
    raw = MiniLM(backend="torch", normalize=False, max_length=small["original_length"], num_threads=1,
                 show_progress=False)
    raw._model = encoder.base.loaded  # same weights, no second load
    mean = raw.encode_documents(pieces).mean(axis=0)
    np.testing.assert_allclose(encoder.encode_documents([text])[0], mean / np.linalg.norm(mean), atol=2e-6)


def test_inputs_over_the_target_are_cut_with_a_warning(encoders) -> None:
    encoder = encoders["gp"]
    encoder._warned = False
    texts = [long_text(300, "x."), "short", long_text(40, "y.")]
    with pytest.warns(UserWarning, match=r"1 of 3 texts are longer than target_length=128"):
        encoder.encode_documents(texts)


def test_config_toml_and_errors() -> None:
    with pytest.raises(ConfigError, match="method"):
        LongEmbedEncoder(method="rope")
    with pytest.raises(ConfigError, match="target_length"):
        LongEmbedEncoder(original_length=256, target_length=128)
    with pytest.raises(ConfigError, match="original_length"):
        LongEmbedEncoder(original_length=1024)
    assert "longembed" in embedlab.registry().names("encoder")
    pipeline = Pipeline.from_names(encoder={"name": "longembed", "method": "pi", "target_length": 2048})
    assert pipeline.first_stage.encoder.config.method == "pi"
    assert LongEmbedEncoder(target_length=2048).max_tokens == 2046
