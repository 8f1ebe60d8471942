"""embedlab.testing: the seeded cache is what a pipeline reads, the first stage is its exact search."""

from __future__ import annotations

import numpy as np

import embedlab
from embedlab import Corpus, Queries
from embedlab.pipeline import Pipeline
from embedlab.testing import cached_documents, clustered_unit_vectors, exact_first_stage, seeded_cache

WORDS = ["red", "green", "blue", "apple", "pie", "sky"]


class WordsEncoder(embedlab.Component):
    """Normalised word counts over a six-word vocabulary; counts its calls."""

    kind, name = "encoder", "words"
    output_kind = embedlab.EmbeddingKind.DENSE
    dim = len(WORDS)

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.array([[text.split().count(w) for w in WORDS] for text in texts], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    encode_queries = encode_documents = _encode

CORPUS = Corpus(["d0", "d1", "d2", "d3"], ["red apple pie", "green apple", "blue sky", "red red sky"])
QUERIES = Queries(["q0", "q1", "q2"], ["red apple", "sky", "green"])


def test_a_pipeline_on_the_seeded_cache_encodes_no_document(tmp_path) -> None:  # type: ignore[no-untyped-def]
    encoder = WordsEncoder()
    cache = seeded_cache(tmp_path / "cache", encoder, CORPUS)
    assert encoder.calls == 1
    docs = cached_documents(cache, encoder, CORPUS)
    assert encoder.calls == 1 and docs.shape == (4, 6)  # a hit
    fresh = WordsEncoder()
    pipeline = Pipeline(fresh, embedlab.create("index", "exact"), cache=cache)
    pipeline.build(CORPUS)
    assert fresh.calls == 0  # the pipeline found the documents under the same key


def test_exact_first_stage_equals_the_pipelines_exact_search(tmp_path) -> None:  # type: ignore[no-untyped-def]
    encoder = WordsEncoder()
    docs = cached_documents(seeded_cache(tmp_path, encoder, CORPUS), encoder, CORPUS)
    ranking = exact_first_stage(encoder, docs, CORPUS, QUERIES, k=3)
    pipeline = Pipeline(WordsEncoder(), embedlab.create("index", "exact"))
    pipeline.build(CORPUS)
    expected = pipeline.search(QUERIES, k=3)
    np.testing.assert_array_equal(ranking.query_ids, expected.query_ids)
    np.testing.assert_allclose(ranking.scores, expected.scores, rtol=1e-6)
    assert ranking.doc_ids[0, 0] == "d0" and ranking.doc_ids[1, 0] == "d2"
    limited = exact_first_stage(encoder, docs, CORPUS, QUERIES, k=2, limit=1)
    assert limited.doc_ids.shape == (1, 2) and list(limited.query_ids) == ["q0"]


def test_clustered_unit_vectors_are_seeded_unit_rows_around_few_centres() -> None:
    x = clustered_unit_vectors(300, 16, clusters=3, seed=4, noise=0.1)
    assert x.shape == (300, 16) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(x, clustered_unit_vectors(300, 16, clusters=3, seed=4, noise=0.1))
    assert not np.array_equal(x, clustered_unit_vectors(300, 16, clusters=3, seed=5, noise=0.1))
    # little noise around 3 centres: every row has dozens of near-parallel cluster mates
    assert (x @ x.T > 0.9).sum(axis=1).min() >= 30
