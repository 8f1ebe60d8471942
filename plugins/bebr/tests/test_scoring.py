"""Compiled scans (tables, popcounts) against naive bit-by-bit computations and the core's Hamming search."""

from __future__ import annotations

import attrs
import numpy as np
import pytest
from embedlab_bebr import BEBRCompressor, scan
from embedlab_bebr import codes as layout

import embedlab
from embedlab import BinaryCodes, EmbeddingKind
from embedlab.index import ExactIndex


def naive_composite(codes: np.ndarray, levels: int, code_dim: int) -> np.ndarray:
    """Composite vectors read one bit at a time with shifts (no numpy.unpackbits)."""
    out = np.zeros((len(codes), code_dim))
    for row, code in enumerate(codes):
        for level in range(levels):
            for dim in range(code_dim):
                byte = int(code[level * code_dim // 8 + dim // 8])
                bit = (byte >> (7 - dim % 8)) & 1
                out[row, dim] += 0.5 ** level * (1 if bit else -1)
    return out


def with_scoring(compressor: BEBRCompressor, scoring: str) -> BEBRCompressor:
    """The same fitted network under another scoring mode (via save/load-free state sharing)."""
    other = BEBRCompressor(attrs.evolve(compressor.config, scoring=scoring))
    other._fitted = compressor._fitted
    return other


@pytest.mark.parametrize("levels", [1, 2, 3, 5])
def test_table_scan_equals_naive_inner_products(levels: int) -> None:
    rng = np.random.default_rng(levels)
    codes = rng.integers(0, 256, (40, levels * 24 // 8), dtype=np.uint8)
    z = rng.standard_normal((6, 24)).astype(np.float32)
    expected = z @ naive_composite(codes, levels, 24).T
    np.testing.assert_allclose(scan.adc_scores(z, codes, levels), expected, rtol=1e-5, atol=1e-5)


def test_table_scan_chunks_queries(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (30, 6), dtype=np.uint8)
    z = rng.standard_normal((7, 16)).astype(np.float32)
    whole = scan.adc_scores(z, codes, 3)
    monkeypatch.setattr(scan, "TABLE_BUDGET", 6 * 256 * 2)  # two queries per table
    np.testing.assert_allclose(scan.adc_scores(z, codes, 3), whole, rtol=1e-6)


@pytest.mark.parametrize(("levels", "code_dim"), [(1, 64), (2, 128), (3, 64)])
def test_popcount_scan_equals_composite_inner_products(levels: int, code_dim: int) -> None:
    rng = np.random.default_rng(code_dim + levels)
    width = levels * code_dim // 8
    codes = rng.integers(0, 256, (3000, width), dtype=np.uint8)  # more than one block of documents
    queries = rng.integers(0, 256, (5, width), dtype=np.uint8)
    expected = naive_composite(queries, levels, code_dim) @ naive_composite(codes[:40], levels, code_dim).T
    scores = scan.sdc_scores(queries, codes, levels, code_dim)
    assert scores.shape == (5, 3000) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[:, :40], expected, rtol=1e-6, atol=1e-5)
    composite = layout.composite(codes, levels, code_dim)
    np.testing.assert_allclose(scores, layout.composite(queries, levels, code_dim) @ composite.T, atol=1e-4)
    offset = np.zeros((3001, width), np.uint8)[1:]  # a view that is not 8-byte aligned
    offset[:] = codes
    np.testing.assert_array_equal(scan.sdc_scores(queries, offset, levels, code_dim), scores)


def test_sdc_of_codes_in_multiples_of_64_uses_popcounts(vectors: np.ndarray, queries: np.ndarray, fast: dict,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    compressor = BEBRCompressor(**{**fast, "code_dim": 64}).fit(vectors)
    codes = compressor.encode(vectors[:60])
    expected = compressor.composite(compressor.encode(queries)) @ compressor.composite(codes).T / (64 * 1.25)
    monkeypatch.setattr(scan, "adc_scores", None)  # the table scan must not be used
    np.testing.assert_allclose(compressor.score(queries, codes), expected, rtol=1e-5, atol=1e-6)


def test_sdc_scores_equal_naive_bitwise_computation(fitted: BEBRCompressor, vectors: np.ndarray,
                                                    queries: np.ndarray) -> None:
    codes = fitted.encode(vectors[:50])
    query_codes = fitted.encode(queries)
    naive = naive_composite(query_codes, 2, 32) @ naive_composite(codes, 2, 32).T / (32 * (1 + 0.25))
    scores = fitted.score(queries, codes)
    assert scores.shape == (len(queries), 50) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, naive, rtol=1e-5, atol=1e-6)


def test_adc_scores_equal_inner_products_with_decoded_vectors(fitted: BEBRCompressor, vectors: np.ndarray,
                                                              queries: np.ndarray) -> None:
    adc = with_scoring(fitted, "adc")
    codes = adc.encode(vectors[:50])
    np.testing.assert_allclose(adc.score(queries, codes), queries @ adc.decode(codes).T, rtol=1e-4, atol=1e-5)


def test_one_bit_sdc_ranks_as_core_hamming_search(vectors: np.ndarray, queries: np.ndarray, fast: dict) -> None:
    """With one loop, SDC is 1 - 2 * Hamming / m: the core ExactIndex on the same bits agrees."""
    compressor = BEBRCompressor(bits_per_dim=1, **fast).fit(vectors)
    codes, query_codes = compressor.encode(vectors), compressor.encode(queries)
    hamming = ExactIndex()
    hamming.build(BinaryCodes(codes, 32))
    result = hamming.search(BinaryCodes(query_codes, 32), k=len(vectors))
    distances = np.empty((len(queries), len(vectors)))
    np.put_along_axis(distances, result.indices, -result.scores, axis=1)
    np.testing.assert_allclose(compressor.score(queries, codes), 1 - 2 * distances / 32, atol=1e-6)


def test_plane_zero_is_the_sign_of_the_first_loop(fitted: BEBRCompressor, vectors: np.ndarray) -> None:
    """Codes are bit planes: the first m bits alone are a 1-bit code of the first loop."""
    codes = fitted.encode(vectors[:20])
    first = naive_composite(codes[:, :4], 1, 32)
    both = naive_composite(codes, 2, 32)
    np.testing.assert_array_equal(np.sign(both), first)  # loop 0 dominates: |s_0| = 1 > 1/2


def test_exact_index_searches_codes_with_the_lookup_tables(fitted: BEBRCompressor, vectors: np.ndarray,
                                                           queries: np.ndarray, tmp_path) -> None:
    index = ExactIndex(metric="ip", block_size=100)
    index.use_compressor(fitted)
    index.build(vectors)
    assert index.memory_bytes == len(vectors) * fitted.bytes_per_vector
    result = index.search(queries, k=10)
    scores = fitted.score(queries, fitted.encode(vectors))
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(result.indices, expected)
    index.save(tmp_path / "index")
    loaded = ExactIndex.load(tmp_path / "index")
    again = loaded.search(queries, k=10)
    np.testing.assert_array_equal(again.indices, result.indices)
    np.testing.assert_array_equal(again.scores, result.scores)


class TableEncoder(embedlab.Component):
    """Encoder stand-in: text ``"i"`` is row ``i`` of a fixed table of vectors."""

    kind = "encoder"
    name = "table"
    output_kind = EmbeddingKind.DENSE

    def __init__(self, table: np.ndarray) -> None:
        super().__init__()
        self.table = table
        self.dim = table.shape[1]

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self.table[[int(t) for t in texts]]

    encode_documents = encode_queries


def test_pipeline_with_a_bebr_compressor_searches_its_codes(vectors: np.ndarray, fast: dict) -> None:
    encoder = TableEncoder(vectors)
    pipeline = embedlab.Pipeline(encoder=encoder, index=ExactIndex(),
                                 compressor=embedlab.create("compressor", "bebr", **fast), fit_sample=300)
    corpus = embedlab.Corpus([f"d{i}" for i in range(len(vectors))], [str(i) for i in range(len(vectors))])
    pipeline.build(corpus)
    assert pipeline.bytes_per_document == 8.0  # 2 bits x 32 dimensions, stored as codes
    ranking = pipeline.search(embedlab.Queries(["q0", "q1"], ["5", "9"]), k=3)
    bebr = pipeline.compressor
    scores = bebr.score(vectors[[5, 9]], bebr.encode(vectors))
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :3]
    assert ranking.doc_ids.tolist() == [[f"d{i}" for i in row] for row in expected]
