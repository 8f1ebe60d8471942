"""ExactIndex against numpy brute force and FAISS, for every embedding kind and metric."""

from __future__ import annotations

from pathlib import Path

import attrs
import faiss
import numpy as np
import pytest
import scipy.sparse as sp

import embedlab
from embedlab import (
    AcceptsCompressor,
    BinaryCodes,
    Component,
    ConfigError,
    Index,
    InvalidInputError,
    MultiVectorEmbeddings,
    StateError,
)
from embedlab.index import ExactIndex
from embedlab.persistence import load_state, save_state
from embedlab.plugins import PluginHost

N, D, NQ, K = 1003, 24, 9, 10  # N is not a multiple of the block size: the last block is partial
BLOCK = 128


def brute_force(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by descending score, ties to the lower position, -1/-inf padding (the contract)."""
    n_q, n_d = scores.shape
    order = np.lexsort((np.broadcast_to(np.arange(n_d), scores.shape), -scores), axis=1)[:, :k]
    top = np.take_along_axis(scores, order, axis=1)
    order = np.where(np.isneginf(top), -1, order)
    pad = max(0, k - n_d)
    return (np.pad(top, ((0, 0), (0, pad)), constant_values=-np.inf),
            np.pad(order, ((0, 0), (0, pad)), constant_values=-1))


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return (rng.standard_normal((N, D)).astype(np.float32),
            rng.standard_normal((NQ, D)).astype(np.float32))


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def build(x, metric: str = "ip", **attributes) -> ExactIndex:
    index = ExactIndex(metric=metric, block_size=BLOCK)
    index.build(x, attributes=attributes or None)
    return index


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_dense_matches_faiss_and_numpy(data, metric):
    x, q = data
    result = build(x, metric).search(q, K)
    if metric == "l2":
        reference = faiss.IndexFlatL2(D)
        reference.add(x)
        distances, ids = reference.search(q, K)
        expected = -distances
        exact = -((q[:, None, :].astype(np.float64) - x[None]) ** 2).sum(-1)
    else:
        xs, qs = (x, q) if metric == "ip" else (unit(x), unit(q))
        reference = faiss.IndexFlatIP(D)
        reference.add(xs)
        expected, ids = reference.search(qs, K)
        exact = qs.astype(np.float64) @ xs.T.astype(np.float64)
    np.testing.assert_array_equal(result.indices, ids)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-5, atol=1e-4)
    scores, positions = brute_force(exact, K)
    np.testing.assert_array_equal(result.indices, positions)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-4)


def test_dense_single_block_and_tiny_blocks_agree(data):
    x, q = data
    wide = ExactIndex(block_size=10_000)
    wide.build(x)
    narrow = ExactIndex(block_size=3)  # smaller than k: every block is merged whole
    narrow.build(x)
    a, b = wide.search(q, K), narrow.search(q, K)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)  # BLAS rounding depends on the shape


def test_ties_go_to_lower_positions_across_blocks():
    x = np.ones((50, 4), np.float32)
    x[[7, 31]] = 2.0
    result = build(x).search(np.ones((2, 4), np.float32), 6)
    np.testing.assert_array_equal(result.indices, [[7, 31, 0, 1, 2, 3]] * 2)
    index = ExactIndex(block_size=4)
    index.build(x)
    np.testing.assert_array_equal(index.search(np.ones((1, 4), np.float32), 6).indices,
                                  [[7, 31, 0, 1, 2, 3]])


def test_k_larger_than_corpus_is_padded(data):
    x, q = data
    result = build(x[:4]).search(q[:2], 6)
    assert result.indices.shape == (2, 6)
    assert (result.indices[:, 4:] == -1).all() and np.isneginf(result.scores[:, 4:]).all()
    assert sorted(result.indices[0, :4]) == [0, 1, 2, 3]
    assert (np.diff(result.scores[:, :4], axis=1) <= 0).all()


def test_zero_queries_give_an_empty_result(data):
    x, _ = data
    result = build(x).search(np.zeros((0, D), np.float32), 3)
    assert result.indices.shape == (0, 3)


def test_sparse_matches_dense_equivalent():
    docs = sp.random(700, 300, density=0.04, random_state=1, format="csr", dtype=np.float32)
    queries = sp.random(6, 300, density=0.1, random_state=2, format="csr", dtype=np.float32)
    for metric in ("ip", "cosine", "l2"):
        a = build(docs, metric).search(queries, K)
        dense_docs, dense_queries = docs.toarray(), queries.toarray()
        if metric == "cosine":  # zero rows stay zero (score 0)
            dense_docs = dense_docs / np.maximum(np.linalg.norm(dense_docs, axis=1, keepdims=True), 1e-30)
            dense_queries = unit(dense_queries)
            b = build(dense_docs, "ip").search(dense_queries, K)
        else:
            b = build(dense_docs, metric).search(dense_queries, K)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bits", [104, 100, 256])
def test_binary_hamming_matches_numpy_and_faiss(bits):
    rng = np.random.default_rng(bits)
    docs = BinaryCodes.from_signs(rng.standard_normal((600, bits)))
    queries = BinaryCodes.from_signs(rng.standard_normal((5, bits)))
    result = build(docs).search(queries, K)
    hamming = (queries.unpack()[:, None, :] != docs.unpack()[None]).sum(-1)
    scores, positions = brute_force(-hamming.astype(np.float64), K)
    np.testing.assert_array_equal(result.indices, positions)  # ties are common: exact order matters
    np.testing.assert_array_equal(result.scores, scores)
    if bits % 8 == 0:
        reference = faiss.IndexBinaryFlat(bits)
        reference.add(docs.bits)
        distances, _ = reference.search(queries.bits, K)
        np.testing.assert_array_equal(-result.scores, distances)


def test_binary_popcount_fallback_without_bitwise_count(monkeypatch):
    rng = np.random.default_rng(3)
    docs = BinaryCodes.from_signs(rng.standard_normal((300, 70)))
    queries = BinaryCodes.from_signs(rng.standard_normal((3, 70)))
    expected = build(docs).search(queries, K)
    monkeypatch.delattr(np, "bitwise_count", raising=False)
    result = build(docs).search(queries, K)
    np.testing.assert_array_equal(result.indices, expected.indices)
    np.testing.assert_array_equal(result.scores, expected.scores)


def random_multivector(rng, n: int, dim: int, low: int, high: int) -> MultiVectorEmbeddings:
    return MultiVectorEmbeddings.from_list([rng.standard_normal((rng.integers(low, high), dim))
                                            for _ in range(n)], dim=dim)


def naive_maxsim(queries: MultiVectorEmbeddings, docs: MultiVectorEmbeddings) -> np.ndarray:
    out = np.zeros((len(queries), len(docs)))
    for i in range(len(queries)):
        for j in range(len(docs)):
            q, d = queries.item(i).astype(np.float64), docs.item(j).astype(np.float64)
            if len(q) and not len(d):
                out[i, j] = -np.inf
            elif len(q):
                out[i, j] = (q @ d.T).max(axis=1).sum()
    return out


@pytest.mark.parametrize("metric", ["ip", "cosine"])
def test_multivector_matches_naive_loop(metric):
    rng = np.random.default_rng(4)
    docs = random_multivector(rng, 250, 8, 0, 6)  # includes documents without vectors
    queries = random_multivector(rng, 5, 8, 1, 5)
    assert (docs.counts == 0).any()
    result = build(docs, metric).search(queries, K)
    if metric == "cosine":
        docs = MultiVectorEmbeddings(unit(docs.vectors), docs.offsets)
        queries = MultiVectorEmbeddings(unit(queries.vectors), queries.offsets)
    scores, positions = brute_force(naive_maxsim(queries, docs), K)
    np.testing.assert_array_equal(result.indices, positions)
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5, atol=1e-5)


def test_multivector_never_returns_documents_without_vectors():
    docs = MultiVectorEmbeddings.from_list([np.ones((1, 2)), np.zeros((0, 2)), np.ones((2, 2))])
    result = build(docs).search(MultiVectorEmbeddings.from_list([np.ones((1, 2))]), 3)
    np.testing.assert_array_equal(result.indices, [[0, 2, -1]])


def test_add_equals_build_on_concatenation(data):
    x, q = data
    tags = np.arange(N) % 3
    whole = build(x, "l2", tag=tags)
    parts = ExactIndex(metric="l2", block_size=BLOCK)
    parts.build(x[:400], attributes={"tag": tags[:400]})
    parts.add(x[400:], attributes={"tag": tags[400:]})
    assert len(parts) == N
    a = whole.search(q, K, filter={"tag": 1})
    b = parts.search(q, K, filter={"tag": 1})
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert (a.indices % 3 == 1).all()


def test_add_without_build_builds(data):
    x, q = data
    index = ExactIndex()
    index.add(x)
    np.testing.assert_array_equal(index.search(q, K).indices, build(x).search(q, K).indices)


def test_add_rejects_other_kind_dimension_and_columns(data):
    x, _ = data
    index = build(x, tag=np.zeros(N))
    with pytest.raises(InvalidInputError, match="cannot add sparse"):
        index.add(sp.csr_matrix(x[:2]), attributes={"tag": np.zeros(2)})
    with pytest.raises(InvalidInputError, match=f"dimension 5 does not match the expected {D}"):
        index.add(np.ones((2, 5), np.float32), attributes={"tag": np.zeros(2)})
    with pytest.raises(InvalidInputError, match=r"attributes \['other'\].*\['tag'\]"):
        index.add(x[:2], attributes={"other": np.zeros(2)})
    with pytest.raises(InvalidInputError, match=r"attribute 'tag' has shape \(3,\)"):
        index.add(x[:2], attributes={"tag": np.zeros(3)})
    assert len(index) == N


def test_invalid_inputs_raise_clear_errors(data):
    x, q = data
    index = build(x)
    with pytest.raises(InvalidInputError, match=f"dimension 7 does not match the expected {D}"):
        index.search(np.ones((2, 7), np.float32), K)
    bad = q.copy()
    bad[1, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 1 contains NaN"):
        index.search(bad, K)
    corpus = x.copy()
    corpus[5, 0] = np.inf
    with pytest.raises(InvalidInputError, match="row 5 contains NaN or inf"):
        build(corpus)
    with pytest.raises(InvalidInputError, match="no vectors"):
        build(np.zeros((0, D), np.float32))
    with pytest.raises(InvalidInputError, match="empty; call build"):
        ExactIndex().search(q, K)
    with pytest.raises(InvalidInputError, match="queries are sparse embeddings but the index holds dense"):
        index.search(sp.csr_matrix(q), K)
    with pytest.raises(InvalidInputError, match="queries are binary"):
        index.search(BinaryCodes.from_signs(q), K)
    for k in (0, -3, True, 2.5):
        with pytest.raises(InvalidInputError, match="k must be a positive integer"):
            index.search(q, k)
    codes = build(BinaryCodes.from_signs(x))
    with pytest.raises(InvalidInputError, match=f"codes have 8 bits, the index holds {D}-bit"):
        codes.search(BinaryCodes.from_signs(q[:, :8]), K)
    multi = build(MultiVectorEmbeddings.from_list([x[:3], x[3:5]]))
    with pytest.raises(InvalidInputError, match=f"dimension 4, the index holds dimension {D}"):
        multi.search(MultiVectorEmbeddings.from_list([q[:2, :4]]), K)
    with pytest.raises(InvalidInputError, match="'l2' is not defined for multi-vector"):
        build(MultiVectorEmbeddings.from_list([x[:3]]), "l2")


@pytest.mark.parametrize("params", [{"metric": "dot"}, {"block_size": 0}, {"block_size": True},
                                    {"block_size": 2.0}, {"blocksize": 4}])
def test_config_is_validated(params):
    with pytest.raises(ConfigError):
        ExactIndex(**params)


def test_registered_and_implements_protocols():
    index = embedlab.create("index", "exact", metric="cosine", block_size=64)
    assert isinstance(index, ExactIndex) and index.config.block_size == 64
    assert isinstance(index, Index) and isinstance(index, AcceptsCompressor)


def test_memory_bytes_counts_vectors_norms_and_attributes(data):
    x, _ = data
    assert build(x).memory_bytes == x.nbytes
    assert build(x, "l2", tag=np.zeros(N, np.int64)).memory_bytes == x.nbytes + N * 4 + N * 8


# -- persistence -------------------------------------------------------------------------------

def all_kinds(rng) -> list[tuple[str, str, object, object]]:
    x = rng.standard_normal((300, 16)).astype(np.float32)
    q = rng.standard_normal((4, 16)).astype(np.float32)
    sparse = sp.random(300, 50, density=0.1, random_state=5, format="csr", dtype=np.float32)
    return [("dense", m, x, q) for m in ("ip", "cosine", "l2")] + [
        ("sparse", "l2", sparse, sparse[:4]),
        ("binary", "ip", BinaryCodes.from_signs(x), BinaryCodes.from_signs(q)),
        ("multivector", "cosine", random_multivector(rng, 300, 16, 0, 4), random_multivector(rng, 4, 16, 1, 3)),
    ]


@pytest.mark.parametrize("case", range(6))
def test_save_load_roundtrip_is_identical(tmp_path, case):
    _, metric, docs, queries = all_kinds(np.random.default_rng(6))[case]
    n = 300
    attributes = {"package": np.array(["json", None, "csv"] * 100, dtype=object),
                  "length": np.where(np.arange(n) % 7 == 0, np.nan, np.arange(n, dtype=float)),
                  "size": np.array([1, None, 2.5] * 100, dtype=object),
                  "rank": np.arange(n)}
    index = ExactIndex(metric=metric, block_size=64)
    index.build(docs, attributes=attributes)
    index.save(tmp_path / "index")
    for loaded in (ExactIndex.load(tmp_path / "index"), embedlab.load_component(tmp_path / "index"),
                   ExactIndex.load(tmp_path / "index", mmap=True)):
        assert loaded.config == index.config and len(loaded) == n
        assert loaded.memory_bytes == index.memory_bytes
        for flt in (None, {"package": "json", "length": {"gte": 10}}, {"size": {"lt": 2}}):
            a, b = index.search(queries, 7, filter=flt), loaded.search(queries, 7, filter=flt)
            np.testing.assert_array_equal(a.indices, b.indices)
            np.testing.assert_array_equal(a.scores, b.scores)
    assert (loaded.search(queries, 3, filter={"package": "csv"}).indices % 3 == 2).all()


def test_attribute_columns_that_cannot_be_saved(tmp_path, data):
    x, _ = data
    index = build(x[:3], mixed=np.array(["a", 1, None], dtype=object))
    with pytest.raises(StateError, match="'mixed' mixes value types"):
        index.save(tmp_path / "index")


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete"])
def test_corrupted_state_names_the_file(tmp_path, data, damage):
    x, _ = data
    build(x).save(tmp_path / "index")
    file = tmp_path / "index" / "vectors.npy"
    payload = bytearray(file.read_bytes())
    if damage == "flip":
        payload[-5] ^= 0xFF
        file.write_bytes(bytes(payload))
    elif damage == "truncate":
        file.write_bytes(bytes(payload[:len(payload) // 2]))
    else:
        file.unlink()
    with pytest.raises(StateError, match="vectors.npy"):
        ExactIndex.load(tmp_path / "index")


def test_load_refuses_another_component(tmp_path):
    save_state(tmp_path / "other", Float16(), arrays={})
    with pytest.raises(StateError, match="expected kind 'index'"):
        ExactIndex.load(tmp_path / "other")


# -- compressors -------------------------------------------------------------------------------

class Float16(Component):
    """Test-only compressor: float16 codes, decoded back to float32."""

    kind = "compressor"
    name = "test-float16"

    @attrs.frozen
    class Config:
        pass

    decoded_rows: list[int]

    def __init__(self, config=None, /, **params):
        super().__init__(config, **params)
        self.decoded_rows = []

    def fit(self, vectors):
        return self

    def encode(self, vectors):
        return np.asarray(vectors, np.float16)

    def decode(self, codes):
        self.decoded_rows.append(codes.shape[0])
        return codes.astype(np.float32)

    @property
    def bytes_per_vector(self) -> float:
        return 0.0

    def save(self, path):
        save_state(path, self)

    @classmethod
    def load(cls, path):
        load_state(path, kind=cls.kind, name=cls.name)
        return cls()


class ScoringFloat16(Float16):
    """Same codes, scored without decoding (a CodeScorer)."""

    name = "test-float16-scorer"

    def score(self, queries, codes):
        return queries @ codes.T.astype(np.float32)


class CompressorPlugin:
    EMBEDLAB_API_VERSION = embedlab.EMBEDLAB_API_VERSION

    @staticmethod
    @embedlab.hookimpl
    def embedlab_register(registry):
        registry.add("compressor", Float16.name, Float16)
        registry.add("compressor", ScoringFloat16.name, ScoringFloat16)


@pytest.fixture
def registered_compressors(monkeypatch):
    """A private plugin host with the test compressors, so load_component can find them."""
    from embedlab import _builtin

    host = PluginHost()
    host.load_plugin(_builtin, "embedlab", "embedlab", embedlab.__version__)
    assert host.load_plugin(CompressorPlugin, "tests").status == "loaded"
    monkeypatch.setattr(embedlab, "_host", host)


@pytest.mark.parametrize("compressor_class", [Float16, ScoringFloat16])
@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_compressor_codes_are_searched_blockwise(tmp_path, data, registered_compressors, compressor_class, metric):
    x, q = data
    compressor = compressor_class()
    index = ExactIndex(metric=metric, block_size=BLOCK)
    index.use_compressor(compressor)
    index.build(x)
    assert index.memory_bytes == x.size * 2 + (N * 4 if metric == "l2" else 0)
    compressor.decoded_rows.clear()
    result = index.search(q, K)
    if compressor_class is Float16:  # decoded one block at a time, never the whole corpus
        assert max(compressor.decoded_rows) <= BLOCK and sum(compressor.decoded_rows) == N
    else:  # a CodeScorer scores the codes directly
        assert compressor.decoded_rows == []
    reference = build(x.astype(np.float16).astype(np.float32), metric).search(q, K)
    np.testing.assert_array_equal(result.indices, reference.indices)
    np.testing.assert_allclose(result.scores, reference.scores, rtol=1e-5, atol=1e-4)

    index.save(tmp_path / "index")
    assert (tmp_path / "index" / "compressor" / "manifest.json").is_file()
    loaded = ExactIndex.load(tmp_path / "index")
    assert isinstance(loaded._compressor, compressor_class)
    again = loaded.search(q, K)
    np.testing.assert_array_equal(again.indices, result.indices)
    np.testing.assert_array_equal(again.scores, result.scores)


def test_compressor_rules(data):
    x, _ = data
    index = ExactIndex()
    index.use_compressor(Float16())
    with pytest.raises(InvalidInputError, match="needs dense embeddings"):
        index.build(BinaryCodes.from_signs(x))
    index.build(x)
    with pytest.raises(InvalidInputError, match="before build"):
        index.use_compressor(Float16())


def test_saved_files_are_plain_npy(tmp_path, data):
    x, _ = data
    build(x, package=np.array(["a", None, "b"] * (N // 3) + ["a"] * (N % 3), dtype=object)).save(tmp_path / "i")
    for file in Path(tmp_path / "i").glob("*.npy"):
        np.load(file, allow_pickle=False)


@pytest.mark.parametrize("metric", ["ip", "cosine", "l2"])
def test_numba_selection_gives_the_numpy_results(data, metric, monkeypatch):
    """The optional compiled selection (numba) and the numpy path return identical top-k lists,
    with and without filters, for vectors and for prepared PQ codes."""
    pytest.importorskip("numba")
    import embedlab.index.topk as topk
    from embedlab.pq_compressor import PQCompressor

    docs, queries = data[0], data[1]
    rows = np.random.default_rng(4).random((len(queries), len(docs))) < 0.3
    years = {"year": np.arange(len(docs)) % 4}
    results = {}
    for accelerate in (False, True):
        monkeypatch.setattr(topk, "ACCELERATE", accelerate)
        plain = ExactIndex(metric=metric, block_size=96)
        plain.build(docs, years)
        coded = ExactIndex(metric=metric, block_size=96)
        coded.use_compressor(PQCompressor(m=4, ksub=16, iterations=3).fit(docs))
        coded.build(docs, years)
        results[accelerate] = [index.search(queries, 7, filter=f) for index in (plain, coded)
                               for f in (None, {"year": 2}, rows)]
    for a, b in zip(results[False], results[True]):
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.scores, b.scores)
