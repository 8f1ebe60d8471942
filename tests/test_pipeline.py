"""Pipelines: explicit fit stages, compressor paths, caching, reranking and input errors."""

from __future__ import annotations

import hashlib

import attrs
import numpy as np
import pytest

import embedlab
from embedlab import Corpus, Queries
from embedlab.cache import EmbeddingCache
from embedlab.pipeline import Pipeline

DIM = 32


class HashingEncoder(embedlab.Component):
    """Bag of hashed words, normalised: deterministic and dependency-free."""

    kind = "encoder"
    name = "hashing"
    output_kind = embedlab.EmbeddingKind.DENSE
    dim = DIM

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = 0

    def _encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), DIM), np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % DIM] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)

    encode_queries = encode_documents = _encode


class FittedEncoder(HashingEncoder):
    name = "fitted"

    def fit(self, documents):
        self.fitted_on = list(documents)
        return self

    def _encode(self, texts):
        assert hasattr(self, "fitted_on"), "used before fit"
        return super()._encode(texts)

    encode_queries = encode_documents = _encode


class Float16(embedlab.Component):
    kind = "compressor"
    name = "f16"

    def fit(self, vectors):
        self.fitted_rows = len(vectors)
        return self

    def encode(self, vectors):
        return np.asarray(vectors, np.float16)

    def decode(self, codes):
        return codes.astype(np.float32)

    bytes_per_vector = DIM * 2

    def save(self, path):
        embedlab.persistence.save_state(path, self)


class ReverseReranker(embedlab.Component):
    kind = "reranker"
    name = "reverse"

    def rerank(self, ranking, queries, corpus):
        return embedlab.Ranking(ranking.query_ids, ranking.doc_ids[:, ::-1], ranking.scores[:, ::-1])


@pytest.fixture
def corpus():
    texts = ["the cat sat on the mat", "dogs chase cats", "stock market crash", "a cat and a dog",
             "market prices rise", "quiet night sky"]
    return Corpus([f"d{i}" for i in range(len(texts))], texts)


@pytest.fixture
def queries():
    return Queries(["q1", "q2"], ["the cat sat on the mat", "stock market crash"])


def test_pipeline_ranks_matching_documents_first(corpus, queries):
    pipeline = Pipeline(HashingEncoder(), embedlab.create("index", "exact"))
    timings = pipeline.build(corpus)
    ranking = pipeline.search(queries, k=3)
    assert ranking.doc_ids[0, 0] == "d0" and ranking.doc_ids[1, 0] == "d2"
    assert timings.build_s >= timings.index_s >= 0
    assert pipeline.timings.latency_ms > 0
    assert set(pipeline.fingerprints()) == {"encoder", "index"}


def test_trainable_encoder_is_fitted_explicitly_on_the_documents(corpus, queries):
    encoder = FittedEncoder()
    pipeline = Pipeline(encoder, embedlab.create("index", "exact"))
    pipeline.build(corpus)
    assert encoder.fitted_on == corpus.documents()
    assert pipeline.search(queries, k=2).doc_ids.shape == (2, 2)


def test_compressor_is_fitted_on_a_seeded_sample_and_codes_are_stored(corpus, queries):
    compressor = Float16()
    pipeline = Pipeline(HashingEncoder(), embedlab.create("index", "exact"), compressor=compressor,
                        fit_sample=4)
    pipeline.build(corpus)
    assert compressor.fitted_rows == 4
    assert pipeline.bytes_per_document == pytest.approx(DIM * 2)
    reference = Pipeline(HashingEncoder(), embedlab.create("index", "exact"))
    reference.build(corpus)
    assert pipeline.search(queries, 3).doc_ids.tolist() == reference.search(queries, 3).doc_ids.tolist()


def test_reranker_runs_after_search(corpus, queries):
    pipeline = Pipeline(HashingEncoder(), embedlab.create("index", "exact"), reranker=ReverseReranker())
    pipeline.build(corpus)
    assert pipeline.search(queries, k=3).doc_ids[0, -1] == "d0"


def test_cache_skips_encoding_on_second_run_and_survives_corruption(tmp_path, corpus, queries):
    cache = EmbeddingCache(tmp_path)
    first = Pipeline(HashingEncoder(), embedlab.create("index", "exact"), cache=cache)
    first.build(corpus)
    expected = first.search(queries, 3)
    encoder = HashingEncoder()
    second = Pipeline(encoder, embedlab.create("index", "exact"), cache=cache)
    second.build(corpus)
    assert second.search(queries, 3).doc_ids.tolist() == expected.doc_ids.tolist()
    assert encoder.calls == 0 and second.timings.cache_hits == 2
    for npy in tmp_path.rglob("*.npy"):
        npy.write_bytes(npy.read_bytes()[:-3])
    third_encoder = HashingEncoder()
    third = Pipeline(third_encoder, embedlab.create("index", "exact"), cache=cache)
    with pytest.warns(UserWarning, match="unusable.*recomputing"):
        third.build(corpus)
    assert third_encoder.calls == 1


def test_cache_key_depends_on_config_and_content(tmp_path, corpus):
    cache = EmbeddingCache(tmp_path)

    @attrs.frozen
    class ScaleConfig:
        scale: int = 1

    class Configured(HashingEncoder):
        Config = ScaleConfig

    key = cache.key(Configured(scale=1), "documents", corpus.content_hash)
    assert key != cache.key(Configured(scale=2), "documents", corpus.content_hash)
    assert key != cache.key(Configured(scale=1), "queries", corpus.content_hash)
    assert key != cache.key(Configured(scale=1), "documents", "other")


def test_search_errors(corpus, queries):
    pipeline = Pipeline(HashingEncoder(), embedlab.create("index", "exact"))
    with pytest.raises(embedlab.InvalidInputError, match="build"):
        pipeline.search(queries, 3)


def test_from_names_resolves_components_and_reports_unknown_ones():
    with pytest.raises(embedlab.UnknownComponentError, match="no encoder named 'nope'"):
        Pipeline.from_names(encoder="nope")
    with pytest.raises(embedlab.ConfigError, match="string 'name'"):
        Pipeline.from_names(encoder={"model": "x"})
