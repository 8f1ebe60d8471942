"""Shared fixtures: real SciFact texts, loaded-once encoders and the sentence-transformers reference."""

from __future__ import annotations

from pathlib import Path

import pytest
from embedlab_transformers import MiniLM

from embedlab.datasets.beir import load_beir

#: One intra-op thread (immune to OpenMP spin stalls on a busy machine), no progress bars.
QUIET = {"num_threads": 1, "show_progress": False}
SCIFACT = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "scifact" / "beir"


@pytest.fixture(scope="session")
def scifact():
    return load_beir(SCIFACT)


@pytest.fixture(scope="session")
def documents(scifact) -> list[str]:
    """8 real abstracts (title + text), most longer than 256 tokens."""
    return scifact.corpus.documents()[:8]


@pytest.fixture(scope="session")
def queries(scifact) -> list[str]:
    """20 real SciFact claims (short texts)."""
    return list(scifact.queries.texts[:20])


@pytest.fixture(scope="session")
def opts() -> dict:
    """Parameters every test encoder takes."""
    return dict(QUIET)


@pytest.fixture(scope="session")
def minilm() -> MiniLM:
    return MiniLM(**QUIET)


@pytest.fixture(scope="session")
def reference():
    """sentence-transformers' own model for the same directory: the reference."""
    from embedlab_transformers.model_files import default_model_dir
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(default_model_dir()), device="cpu")


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory):
    """A fresh EMBEDLAB_CACHE_DIR for the session: the ONNX export runs (once) in every test run."""
    root = tmp_path_factory.mktemp("embedlab-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EMBEDLAB_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="session")
def minilm_onnx(onnx_cache) -> MiniLM:
    encoder = MiniLM(backend="onnx", **QUIET)
    assert encoder.loaded.dim == 384  # exports now, inside the cache fixture's environment
    return encoder


def pytest_configure(config):
    """Long SciFact abstracts are truncated on purpose; the truncation test checks the warning itself."""
    config.addinivalue_line("filterwarnings", r"ignore:.*longer than max_length=\d+ tokens and were truncated")
