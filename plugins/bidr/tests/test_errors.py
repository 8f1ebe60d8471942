"""Bad parameters and inputs give clear errors; documented clamping of the candidate count."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_bidr import BiDRIndex

import embedlab
from embedlab.errors import ConfigError, InvalidInputError, NotFittedError
from embedlab.pq_compressor import PQCompressor


@pytest.mark.parametrize("params", [
    {"candidates": 0}, {"candidates": 2.5}, {"metric": "dot"}, {"m": 0}, {"ksub": 1}, {"ksub": 70000},
    {"sparse_weight": -0.1}, {"sparse_weight": float("nan")}, {"train_size": 0}, {"seed": -1},
    {"storage_dir": 3}, {"unknown": 1},
])
def test_bad_parameters(params) -> None:
    with pytest.raises(ConfigError):
        BiDRIndex(**params)


def test_registered_under_its_names() -> None:
    assert isinstance(embedlab.create("index", "bidr", candidates=10), BiDRIndex)
    assert isinstance(embedlab.create("compressor", "pq"), PQCompressor)


def test_m_must_divide_the_dimension(docs) -> None:
    with pytest.raises(ConfigError, match="not divisible by m=5"):
        BiDRIndex(m=5, ksub=16).build(docs)


def test_too_few_documents_for_the_codebooks(docs) -> None:
    with pytest.raises(InvalidInputError, match="at least 256 training vectors"):
        BiDRIndex(m=8).build(docs[:100])


@pytest.mark.parametrize("bad", [np.zeros((0, 32)), np.full((3, 32), np.nan), np.zeros(32), np.zeros((3, 31))])
def test_bad_queries(built, bad) -> None:
    if len(bad) == 0 and bad.ndim == 2:
        assert built.search(bad, 5).indices.shape == (0, 5)  # no queries: an empty result
        return
    with pytest.raises(InvalidInputError):
        built.search(bad, 5)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_and_candidates(built, queries, k) -> None:
    with pytest.raises(InvalidInputError, match="k must be"):
        built.search(queries, k)
    with pytest.raises(InvalidInputError, match="candidates must be"):
        built.search(queries, 5, candidates=k)
    with pytest.raises(InvalidInputError, match="k must be"):
        built.search_codes(queries, k)


def test_candidates_below_k_are_raised_to_k_and_k_beyond_the_corpus_pads(built, docs, queries) -> None:
    few = built.search(queries, 20, candidates=3)
    assert built.last_bytes_read == len(queries) * 20 * docs.shape[1] * 4
    assert (few.indices >= 0).all()
    padded = built.search(queries[:2], len(docs) + 5)
    assert (padded.indices[:, :len(docs)] >= 0).all() and (padded.indices[:, len(docs):] == -1).all()
    assert np.isneginf(padded.scores[:, len(docs):]).all()


def test_empty_index_and_late_compressor(docs, queries) -> None:
    index = BiDRIndex(m=8, ksub=16)
    with pytest.raises(InvalidInputError, match="call build"):
        index.search(queries, 5)
    with pytest.raises(InvalidInputError, match="call build"):
        index.save("unused")
    assert index.memory_bytes == 0 and index.disk_bytes == 0 and len(index) == 0
    index.build(docs)
    with pytest.raises(InvalidInputError, match="before build"):
        index.use_compressor(PQCompressor(m=8, ksub=16).fit(docs))
    with pytest.raises(InvalidInputError, match="fit before build"):
        index.fit(docs)
    with pytest.raises(InvalidInputError, match="dimension"):
        index.add(np.zeros((2, 16), np.float32))
    with pytest.raises(InvalidInputError, match="attributes"):
        index.add(docs[:2], attributes={"lang": np.array(["en", "fr"])})
    assert len(index) == len(docs) and len(index.vectors) == len(docs)


def test_fit_refuses_a_foreign_compressor_and_unfitted_pq_says_so(docs) -> None:
    index = BiDRIndex()
    index.use_compressor(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="fit that compressor"):
        index.fit(docs)
    with pytest.raises(NotFittedError, match="call fit"):
        PQCompressor().encode(docs)
