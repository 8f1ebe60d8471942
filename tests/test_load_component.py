"""``embedlab.load_component(path, mmap=...)``: any saved component back by its manifest."""

from __future__ import annotations

import numpy as np
import pytest

import embedlab
from embedlab.index import ExactIndex
from embedlab.pq_compressor import PQCompressor


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return np.random.default_rng(3).normal(size=(300, 16)).astype(np.float32)


def test_mmap_true_memory_maps_the_arrays_and_searches_the_same(vectors, tmp_path) -> None:
    index = ExactIndex(metric="cosine")
    index.build(vectors)
    index.save(tmp_path / "index")
    mapped = embedlab.load_component(tmp_path / "index", mmap=True)
    read = embedlab.load_component(tmp_path / "index")
    assert any(isinstance(a, np.memmap) for a in mapped._store.arrays().values())
    assert not any(isinstance(a, np.memmap) for a in read._store.arrays().values())
    for loaded in (mapped, read):
        a, b = index.search(vectors[:5], 10), loaded.search(vectors[:5], 10)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.scores, b.scores)


def test_mmap_true_on_a_component_that_cannot_map_says_so(vectors, tmp_path) -> None:
    PQCompressor(m=4, ksub=16).fit(vectors).save(tmp_path / "pq")
    with pytest.raises(embedlab.ConfigError, match="compressor 'pq' \\(embedlab\\) cannot memory-map its "
                                                   "state.*load_component\\(path\\)"):
        embedlab.load_component(tmp_path / "pq", mmap=True)
    assert embedlab.load_component(tmp_path / "pq").bytes_per_vector == 4


# -- a saved component as a pipeline stage: { load = "<directory>" } ------------------------------


@pytest.fixture()
def saved_pq_index(vectors, tmp_path):
    """An exact index over the codes of a fitted PQ, saved: the state a ``{load = ...}`` stage reads."""
    pq = PQCompressor(m=4, ksub=16, seed=1).fit(vectors)
    index = ExactIndex(metric="ip")
    index.use_compressor(pq)
    index.build(vectors)
    index.save(tmp_path / "stage1")
    return tmp_path / "stage1", pq


def test_a_load_table_gives_the_saved_component_with_its_fitted_state(saved_pq_index, vectors) -> None:
    from embedlab.retrievers import create_component

    path, pq = saved_pq_index
    index = create_component("index", {"load": str(path)})
    assert isinstance(index, ExactIndex)
    np.testing.assert_array_equal(index.compressor.codebooks.centroids, pq.codebooks.centroids)
    index.build(vectors[::-1])              # rebuilt on other documents: codes from the saved codebooks
    np.testing.assert_allclose(index.search(vectors[:4], 5).scores,
                               np.sort(pq.score(vectors[:4], pq.encode(vectors)), axis=1)[:, ::-1][:, :5], atol=1e-5)


def test_a_pipeline_first_stage_reads_a_saved_index(saved_pq_index) -> None:
    from embedlab.dataset import Corpus, Queries
    from embedlab.hashing import HashingEncoder
    from embedlab.pipeline import Pipeline

    path, _ = saved_pq_index
    texts = [f"document {i} about topic {i % 7} and word {i % 5}" for i in range(60)]
    corpus, queries = Corpus([f"d{i}" for i in range(60)], texts), Queries(["q"], ["topic 3 word 2"])
    encoder = HashingEncoder(dim=16)
    loaded = Pipeline.from_names(encoder={"name": "hashing", "dim": 16}, index={"load": str(path)})
    loaded.build(corpus)
    ranking = loaded.search(queries, 10)
    codes = loaded.first_stage.index.compressor
    scores = codes.score(encoder.encode_queries(["topic 3 word 2"]), codes.encode(encoder.encode_documents(texts)))
    assert np.allclose(np.sort(scores[0])[::-1][:10], ranking.scores[0], atol=1e-5)


def test_load_tables_are_checked(saved_pq_index, tmp_path) -> None:
    from embedlab.retrievers import create_component

    path, _ = saved_pq_index
    with pytest.raises(embedlab.ConfigError, match="holds a saved 'index' component, not a 'compressor'"):
        create_component("compressor", {"load": str(path)})
    with pytest.raises(embedlab.ConfigError, match="alone"):
        create_component("index", {"load": str(path), "metric": "l2"})
    with pytest.raises(embedlab.StateError, match="not an embedlab state directory"):
        create_component("index", {"load": str(tmp_path / "absent")})


def test_the_digest_of_a_spec_follows_the_saved_states_it_loads(saved_pq_index, vectors) -> None:
    from embedlab.retrievers import saved_state_digest

    path, pq = saved_pq_index
    spec = {"encoder": "minilm", "index": {"load": str(path)}}
    assert saved_state_digest({"encoder": "minilm", "index": "exact"}) is None
    before = saved_state_digest(spec)
    assert before == saved_state_digest(dict(spec)) and len(before) == 64
    other = PQCompressor(m=4, ksub=16, seed=2).fit(vectors)        # other codebooks saved at the same path
    index = ExactIndex(metric="ip")
    index.use_compressor(other)
    index.build(vectors)
    index.save(path)
    assert saved_state_digest(spec) != before


def test_an_experiment_stage_may_load_a_saved_component(saved_pq_index) -> None:
    from embedlab.experiment import parse_config

    path, _ = saved_pq_index
    config = parse_config(f"""
[dataset]
path = "x"
split = "test"

[[pipeline]]
name = "codes"
encoder = {{ name = "hashing", dim = 16 }}
index = {{ load = "{path}" }}
""")
    assert config.pipeline("codes").index == {"load": str(path)}
