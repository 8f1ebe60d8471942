"""Configuration and input errors name what is wrong, FAISS's own message included."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_faiss import FaissIndex

from embedlab import BinaryCodes, ConfigError, InvalidInputError, MultiVectorEmbeddings, NotFittedError

RNG = np.random.default_rng(0)
DOCS = RNG.standard_normal((300, 32)).astype(np.float32)


@pytest.mark.parametrize("params", [
    {"factory": ""}, {"factory": 3}, {"metric": "dot"}, {"nprobe": 0}, {"nprobe": 2.5},
    {"efSearch": -1}, {"train_size": True}, {"seed": -1}, {"num_threads": 0}, {"nlist": 4},
])
def test_invalid_config(params):
    with pytest.raises(ConfigError):
        FaissIndex(**params)


@pytest.mark.parametrize("factory, faiss_says", [
    ("IVF1O24,Flat", "could not parse"),
    ("Nonsense", "could not parse"),
    ("PQ5", "multiple of the number of subquantizers"),
])
def test_factory_rejected_by_faiss(factory, faiss_says):
    with pytest.raises(ConfigError, match="config key `factory`") as caught:
        FaissIndex(factory=factory).build(DOCS)
    assert faiss_says in str(caught.value) and repr(factory) in str(caught.value)


def test_runtime_parameter_that_does_not_apply():
    with pytest.raises(ConfigError, match="`nprobe`=4 does not apply to factory 'Flat'"):
        FaissIndex(factory="Flat", nprobe=4).build(DOCS)
    with pytest.raises(ConfigError, match="`efSearch`"):
        FaissIndex(factory="IVF4,Flat", efSearch=16).build(DOCS)


def test_too_few_vectors_to_train_pq():
    with pytest.raises(InvalidInputError, match="at least 256 training vectors, got 100") as caught:
        FaissIndex(factory="PQ8").build(DOCS[:100])
    assert "train_size" in str(caught.value) and "Number of training points (100)" in str(caught.value)


def test_too_few_vectors_to_train_ivf():
    with pytest.raises(InvalidInputError, match="at least 256 training vectors, got 200"):
        FaissIndex(factory="IVF256,PQ4x4").build(DOCS[:200])


def test_train_size_below_what_the_factory_needs():
    with pytest.raises(ConfigError, match=r"`train_size`=20 samples only 20 of the 300 given; "
                                          r"raise `train_size` to >= 64"):
        FaissIndex(factory="IVF64,Flat", train_size=20).build(DOCS)


@pytest.mark.parametrize("bad, message", [
    (sp.csr_matrix(DOCS), "sparse"),
    (MultiVectorEmbeddings(DOCS, [0, 100, 300]), "MultiVectorEmbeddings"),
    (BinaryCodes.from_signs(DOCS), "BinaryCodes"),
    (DOCS[0], "2-d"),
    (np.zeros((0, 32)), "empty"),
    (np.full((2, 32), np.nan), "NaN"),
])
def test_bad_document_input(bad, message):
    with pytest.raises(InvalidInputError, match=message):
        FaissIndex().build(bad)


def test_bad_search_input_and_unbuilt_index():
    index = FaissIndex()
    with pytest.raises(NotFittedError, match="build"):
        index.search(DOCS[:2], 3)
    assert len(index) == 0 and index.memory_bytes == 0
    index.build(DOCS)
    with pytest.raises(InvalidInputError, match="dimension 16 does not match the expected 32"):
        index.search(DOCS[:2, :16], 3)
    for k in (0, -1, 2.0, True):
        with pytest.raises(InvalidInputError, match="k must be an integer"):
            index.search(DOCS[:2], k)


def test_attributes_must_fit_the_documents():
    with pytest.raises(InvalidInputError, match="attribute 'year' has"):
        FaissIndex().build(DOCS, {"year": np.arange(10)})
    index = FaissIndex()
    index.build(DOCS, {"year": np.arange(300)})
    with pytest.raises(InvalidInputError, match="same columns"):
        index.add(DOCS[:5])
