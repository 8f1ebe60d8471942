"""Behaviour of the bm25 encoder: formula, sparse outputs, configuration, bad input, persistence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from embedlab_bm25 import BM25

import embedlab
from embedlab import ConfigError, EmbeddingKind, InvalidInputError, NotFittedError, StateError

DOCS = ["The cat sat on the mat", "A dog chased the cat and the cat ran",
        "dogs and cats are pets", "quantum chromodynamics"]


def textbook(documents, query, k1, b, method):
    """BM25 of one query against tokenised documents, written term by term (no numpy)."""
    n = len(documents)
    avgdl = sum(map(len, documents)) / n
    scores = []
    for doc in documents:
        total = 0.0
        for term in query:
            df = sum(term in d for d in documents)
            if df == 0:
                continue
            tf = doc.count(term)
            if method == "atire":
                idf, scale = math.log(n / df), k1 + 1
            elif method == "lucene":
                idf, scale = math.log(1 + (n - df + 0.5) / (df + 0.5)), 1.0
            else:
                idf, scale = math.log(max(1.0, (n - df + 0.5) / (df + 0.5))), 1.0
            total += idf * scale * tf / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(total)
    return np.array(scores)


def test_registered_under_encoder_bm25():
    encoder = embedlab.create("encoder", "bm25", k1=1.2)
    assert isinstance(encoder, BM25) and encoder.config.k1 == 1.2
    assert isinstance(encoder, embedlab.Encoder) and isinstance(encoder, embedlab.Trainable)
    assert embedlab.registry().spec("encoder", "bm25").distribution == "embedlab-bm25"


@pytest.mark.parametrize("method", ["lucene", "robertson", "atire"])
def test_dot_product_is_the_textbook_score(method):
    encoder = BM25(method=method, k1=1.2, b=0.75).fit(DOCS)
    query = "cat cat dogs quantum unknownword"
    scores = (encoder.encode_queries([query]) @ encoder.encode_documents(DOCS).T).toarray()[0]
    tokens = [encoder.tokenizer(d) for d in DOCS]
    expected = textbook(tokens, encoder.tokenizer(query), 1.2, 0.75, method)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert scores[2] > 0 and scores[3] > 0


def test_outputs_are_float32_csr_over_the_sorted_vocabulary():
    encoder = BM25().fit(DOCS)
    docs = encoder.encode_documents(DOCS)
    queries = encoder.encode_queries(["cat pets", "nothing known here"])
    assert encoder.output_kind is EmbeddingKind.SPARSE
    vocabulary = encoder.vocabulary
    assert list(vocabulary) == sorted(set(vocabulary)) and "the" not in vocabulary
    for matrix, rows in ((docs, 4), (queries, 2)):
        assert sp.isspmatrix_csr(matrix) and matrix.dtype == np.float32
        assert matrix.shape == (rows, encoder.dim) == (rows, vocabulary.size)
    assert queries[1].nnz == 0
    assert docs[0, list(vocabulary).index("cat")] > 0


def test_query_terms_are_counted_and_unknown_terms_dropped():
    encoder = BM25().fit(DOCS)
    row = encoder.encode_queries(["cat CAT cat zebra"])
    assert row.nnz == 1 and row[0, list(encoder.vocabulary).index("cat")] == 3.0


def test_unseen_document_length_counts_unknown_tokens():
    encoder = BM25(b=1.0).fit(DOCS)
    cat = list(encoder.vocabulary).index("cat")
    short = encoder.encode_documents(["cat"])[0, cat]
    padded = encoder.encode_documents(["cat zebra giraffe okapi"])[0, cat]
    assert padded < short


def test_b_zero_ignores_length_and_idf_follows_df():
    encoder = BM25(b=0.0, method="atire").fit(["aa bb", "aa " + "cc " * 50, "dd"])
    weights = encoder.encode_documents(["aa", "aa " + "zz " * 30]).toarray()
    column = list(encoder.vocabulary).index("aa")
    assert weights[0, column] == pytest.approx(weights[1, column])
    np.testing.assert_allclose(encoder.idf, np.log(3 / np.array([2, 1, 1, 1])))


def test_robertson_idf_clamps_common_terms_to_zero():
    encoder = BM25(method="robertson").fit(["common rare", "common", "common"])
    assert encoder.idf[list(encoder.vocabulary).index("common")] == 0.0


def test_tokenizer_options():
    assert BM25(stopwords=False).fit(DOCS).vocabulary.tolist().count("the") == 1
    cased = BM25(lowercase=False).fit(["Cat cat"])
    assert cased.vocabulary.tolist() == ["Cat", "cat"]
    single = BM25(token_pattern=r"\w+").fit(["a b c"])
    assert single.vocabulary.tolist() == ["b", "c"]  # "a" is a stopword
    stemmed = BM25(stemmer="english").fit(["running runs runner"])
    assert "run" in stemmed.vocabulary and "running" not in stemmed.vocabulary


@pytest.mark.parametrize("params", [
    {"k1": 0}, {"k1": -1.0}, {"k1": float("nan")}, {"k1": True}, {"b": 1.5}, {"b": -0.1},
    {"method": "bm25+"}, {"token_pattern": "("}, {"stopwords": "english"}, {"stemmer": "klingon"},
    {"lowercase": 1}, {"kl": 1.2},
])
def test_invalid_config_raises_config_error(params):
    with pytest.raises(ConfigError):
        BM25(**params)


def test_unfitted_use_raises_not_fitted():
    encoder = BM25()
    assert encoder.dim == 0 and not encoder.is_fitted
    for call in (lambda: encoder.encode_documents(["x"]), lambda: encoder.encode_queries(["x"]),
                 lambda: encoder.vocabulary, lambda: encoder.save("unused")):
        with pytest.raises(NotFittedError, match="fit"):
            call()


@pytest.mark.parametrize("documents, message", [
    ([], "empty corpus"),
    (["", "  ", "a the", "!!"], "empty after tokenisation"),
    ("a single string", "single str"),
    (["fine", 3], r"bm25 documents: item 1 is int"),
    (["fine", None], r"bm25 documents: item 1 is NoneType"),
    (None, "sequence of strings"),
])
def test_bad_fit_input(documents, message):
    with pytest.raises(InvalidInputError, match=message):
        BM25().fit(documents)


def test_bad_encode_input_and_empty_batch():
    encoder = BM25().fit(DOCS)
    with pytest.raises(InvalidInputError, match=r"bm25 queries: item 0 is bytes"):
        encoder.encode_queries([b"cat"])
    assert encoder.encode_documents([]).shape == (0, encoder.dim)


def test_empty_documents_count_towards_average_length():
    encoder = BM25().fit(["cat dog", ""])
    assert encoder.avgdl == 1.0
    assert encoder.encode_documents([""]).nnz == 0


def test_save_load_roundtrip(tmp_path):
    encoder = BM25(k1=1.1, method="atire", stemmer="english").fit(DOCS)
    encoder.save(tmp_path / "bm25")
    manifest = json.loads((tmp_path / "bm25" / "manifest.json").read_text())
    assert {"vocabulary.npy", "idf.npy"} <= set(manifest["files"]) and manifest["meta"]["n_docs"] == 4
    assert np.load(tmp_path / "bm25" / "vocabulary.npy", allow_pickle=False).dtype.kind == "U"
    loaded = embedlab.load_component(tmp_path / "bm25")
    assert isinstance(loaded, BM25) and loaded.config == encoder.config
    assert loaded.fingerprint == encoder.fingerprint
    for encode in ("encode_documents", "encode_queries"):
        a, b = getattr(encoder, encode)(DOCS), getattr(loaded, encode)(DOCS)
        assert (a != b).nnz == 0 and a.shape == b.shape


def test_corrupted_state_is_detected(tmp_path):
    BM25().fit(DOCS).save(tmp_path / "bm25")
    idf_file = tmp_path / "bm25" / "idf.npy"
    data = bytearray(idf_file.read_bytes())
    data[-1] ^= 0xFF
    idf_file.write_bytes(bytes(data))
    with pytest.raises(StateError, match="checksum"):
        BM25.load(tmp_path / "bm25")


def test_fit_then_encode_reuses_counts_only_for_the_same_texts():
    encoder = BM25().fit(DOCS)
    other = encoder.encode_documents(["cat cat cat", "pets"])
    assert other.shape == (2, encoder.dim) and other[0].nnz == 1
    first, again = encoder.encode_documents(list(DOCS)), encoder.encode_documents(DOCS)
    assert (first != again).nnz == 0 and first.shape == (4, encoder.dim)
    refit = BM25().fit(DOCS)
    assert (refit.encode_documents(DOCS) != first).nnz == 0


def _java_int_to_byte4_to_int(i: int) -> int:
    """Lucene's SmallFloat.intToByte4 then byte4ToInt, written out as in the Java source."""
    def long_to_int4(v: int) -> int:
        bits = v.bit_length()
        if bits < 4:
            return v
        shift = bits - 4
        return ((v >> shift) & 0x07) | ((shift + 1) << 3)

    def int4_to_long(e: int) -> int:
        bits, shift = e & 0x07, (e >> 3) - 1
        return bits if shift == -1 else (bits | 0x08) << shift

    free = 255 - long_to_int4(2**31 - 1)
    encoded = i if i < free else free + long_to_int4(i - free)
    return encoded if encoded < free else free + int4_to_long(encoded - free)


def test_lucene_lengths_match_smallfloat():
    from embedlab_bm25.scoring import lucene_lengths

    lengths = np.arange(0, 20_000)
    expected = [_java_int_to_byte4_to_int(int(n)) for n in lengths]
    assert lucene_lengths(lengths).tolist() == expected
    assert lucene_lengths(np.array([23, 24, 40, 1000])).tolist() == [23, 24, 40, 984]


def test_lucene_analyzer_tokens():
    from embedlab_bm25.tokenizer import Tokenizer

    text = "John's U.S.A. results: IL-6 rose 3.5-fold (p<0.05) in TNF-α cells; don't e.g. 1,000 日本"
    assert Tokenizer(analyzer="lucene", stopwords=False)(text) == [
        "john", "u.s.a", "results", "il", "6", "rose", "3.5", "fold", "p", "0.05", "in", "tnf", "α",
        "cells", "don't", "e.g", "1,000", "日", "本"]
    assert Tokenizer(analyzer="lucene", stemmer="porter")("The cells were studied in mice") == \
        ["cell", "were", "studi", "mice"]
    with pytest.raises(embedlab.ConfigError, match="unknown analyzer 'icu'"):
        BM25(analyzer="icu")


def test_code_analyzer_splits_identifiers_and_keeps_them_whole():
    from embedlab_bm25.tokenizer import Tokenizer, code_words

    assert code_words("return _abc_register(cls)") == ["return", "abc_register", "abc", "register", "cls"]
    assert code_words("JSONDecoder.getValue2 x") == ["JSONDecoder", "JSON", "Decoder", "getValue2", "get", "Value"]
    assert code_words("Ünïcode_näme") == ["Ünïcode_näme", "Ünïcode", "näme"]
    assert Tokenizer(analyzer="code")("The HTTPServer") == ["httpserver", "http", "server"]


def test_code_analyzer_lets_a_docstring_find_its_function():
    documents = ["def add(cls, sub):\n    return _abc_register(cls, sub)",
                 "def size(self):\n    return len(self.items)"]
    query = ["Register a class"]

    def scores(analyzer: str) -> np.ndarray:
        bm25 = BM25(analyzer=analyzer).fit(documents)
        return (bm25.encode_queries(query) @ bm25.encode_documents(documents).T).toarray()[0]

    # Lucene's word segmentation keeps `_abc_register` as one word: the query's word is not found
    assert scores("lucene").tolist() == [0.0, 0.0]
    code = scores("code")
    assert code[0] > 0 and code[1] == 0
