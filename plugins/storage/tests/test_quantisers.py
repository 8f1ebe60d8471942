"""Quantisers: decode error bounds, code layout, sizes, and agreement with references
(ml_dtypes casts as in the paper's code, FAISS fp16 and binary Hamming, embedlab.BinaryCodes)."""

from __future__ import annotations

import faiss
import ml_dtypes
import numpy as np
import pytest
from embedlab_storage import StorageCompressor

import embedlab

CASTS = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16,
         "float8_e4m3": ml_dtypes.float8_e4m3fn, "float8_e5m2": ml_dtypes.float8_e5m2}


@pytest.mark.parametrize("spec", list(CASTS))
def test_casts_round_to_nearest_within_half_an_ulp(spec: str, vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec=spec).fit(vectors)
    decoded = compressor.decode(compressor.encode(vectors))
    # The paper's quantize_tensor: x.astype(format).astype(float32).
    np.testing.assert_array_equal(decoded, vectors.astype(CASTS[spec]).astype(np.float32))
    info = ml_dtypes.finfo(CASTS[spec])
    bound = np.maximum(float(info.eps) / 2 * np.abs(vectors), float(info.smallest_subnormal) / 2)
    assert np.all(np.abs(decoded - vectors) <= bound)


@pytest.mark.parametrize(("spec", "largest"), [("float8_e4m3", 448.0), ("float8_e5m2", 57344.0),
                                                ("float16", 65504.0)])
def test_casts_saturate_instead_of_overflowing(spec: str, largest: float, vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec=spec).fit(vectors)
    big = np.array([[1e6, -1e6, 0.5]], np.float32)
    decoded = compressor.fit(big).decode(compressor.encode(big))
    np.testing.assert_array_equal(decoded, [[largest, -largest, 0.5]])


def test_float16_matches_faiss_scalar_quantizer_fp16(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="float16").fit(vectors)
    quantizer = faiss.IndexScalarQuantizer(vectors.shape[1], faiss.ScalarQuantizer.QT_fp16)
    quantizer.train(vectors)
    theirs = quantizer.sa_encode(vectors).view(np.float16)
    # Same format: our decoding of FAISS's codes is FAISS's decoding.
    np.testing.assert_array_equal(compressor.decode(theirs), quantizer.sa_decode(theirs.view(np.uint8)))
    # Same codes, except where FAISS's faster conversion rounds the other way (one ulp, rarely);
    # there ours (round to nearest) is the closer one.
    ours = compressor.encode(vectors)
    differ = ours != theirs
    assert differ.mean() < 1e-3
    assert np.all(np.abs(ours.view(np.int16)[differ] - theirs.view(np.int16)[differ]) == 1)
    ours_error = np.abs(ours[differ].astype(np.float32) - vectors[differ])
    assert np.all(ours_error <= np.abs(theirs[differ].astype(np.float32) - vectors[differ]))


def test_int8_per_dimension_calibration_and_error_bound(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="int8").fit(vectors)
    codes = compressor.encode(vectors)
    assert codes.dtype == np.int8
    # Each dimension's minimum maps to -128 and its maximum to 127.
    np.testing.assert_array_equal(codes[vectors.argmin(0), np.arange(48)], -128)
    np.testing.assert_array_equal(codes[vectors.argmax(0), np.arange(48)], 127)
    step = (vectors.max(0) - vectors.min(0)) / 255
    error = np.abs(compressor.decode(codes) - vectors)
    assert np.all(error <= step / 2 * (1 + 1e-4) + 1e-7)
    # Values outside the calibration range are clipped to it.
    outside = vectors[:2] + 10
    np.testing.assert_array_equal(compressor.encode(outside), 127)


def test_int8_percentile_range_clips_outliers(vectors: np.ndarray) -> None:
    spiky = vectors.copy()
    spiky[0, 0] = 50.0  # one outlier would stretch the min/max range of dimension 0
    minmax = StorageCompressor(spec="int8").fit(spiky)
    percentile = StorageCompressor(spec="int8", int8_range="percentile", int8_percentile=99.0).fit(spiky)
    rest = spiky[1:]
    minmax_error = np.abs(minmax.decode(minmax.encode(rest)) - rest)[:, 0].mean()
    percentile_error = np.abs(percentile.decode(percentile.encode(rest)) - rest)[:, 0].mean()
    assert percentile_error < minmax_error / 20
    high = np.percentile(spiky[:, 0], 99.0)
    assert percentile.decode(percentile.encode(spiky[:1]))[0, 0] == pytest.approx(high, abs=1e-5)


def test_binary_codes_are_embedlab_binary_codes(vectors: np.ndarray) -> None:
    compressor = StorageCompressor(spec="binary").fit(vectors)
    codes = compressor.encode(vectors)
    np.testing.assert_array_equal(codes, embedlab.BinaryCodes.from_signs(vectors).bits)
    decoded = compressor.decode(codes)
    np.testing.assert_array_equal(decoded > 0, vectors > 0)
    # Decoded magnitude: the mean absolute value of each dimension.
    np.testing.assert_allclose(np.abs(decoded), np.broadcast_to(np.abs(vectors).mean(0), decoded.shape),
                               rtol=1e-5)


def test_binary_median_threshold_splits_each_dimension_in_half(vectors: np.ndarray) -> None:
    shifted = vectors + 0.5  # every value positive: sign bits would all be 1
    median = StorageCompressor(spec="binary", binary_threshold="median").fit(shifted)
    bits = np.unpackbits(median.encode(shifted), axis=1, count=48)
    np.testing.assert_array_equal(bits.sum(0), len(shifted) // 2)
    zero = StorageCompressor(spec="binary").fit(shifted)
    assert np.all(np.unpackbits(zero.encode(shifted), axis=1, count=48) == 1)


def test_hamming_scoring_matches_faiss_binary_flat(vectors: np.ndarray, queries: np.ndarray) -> None:
    compressor = StorageCompressor(spec="binary", binary_scoring="hamming").fit(vectors)
    codes = compressor.encode(vectors)
    index = faiss.IndexBinaryFlat(48)
    index.add(codes)
    distances, positions = index.search(compressor.encode(queries), len(codes))
    hamming = np.empty_like(distances)
    np.put_along_axis(hamming, positions, distances, axis=1)
    np.testing.assert_array_equal(compressor.score(queries, codes), 48 - 2 * hamming)


@pytest.mark.parametrize(("spec", "expected"), [
    ("float32", 1536), ("float16", 768), ("bfloat16", 768), ("float8_e4m3", 384),
    ("float8_e5m2", 384), ("int8", 384), ("binary", 48), ("pca:0.5+float8_e4m3", 192),
    ("pca:0.5", 768), ("pca:0.5+binary", 24), ("grp:0.25+float16", 192), ("srp:0.25", 384),
    ("kpca:0.25+int8", 96), ("pca:0.9+binary", 44),
])
def test_bytes_per_vector_is_exact(spec: str, expected: int) -> None:
    x = np.random.default_rng(0).standard_normal((400, 384)).astype(np.float32)
    compressor = StorageCompressor(spec=spec, reference_size=400).fit(x)
    codes = compressor.encode(x[:5])
    assert compressor.bytes_per_vector == expected == codes.nbytes / len(codes)


def test_codes_of_the_wrong_shape_or_dtype_are_rejected(vectors: np.ndarray, queries: np.ndarray) -> None:
    compressor = StorageCompressor(spec="int8").fit(vectors)
    with pytest.raises(embedlab.InvalidInputError, match=r"expected an \(n, 48\) int8 array"):
        compressor.decode(np.zeros((3, 48), np.uint8))
    with pytest.raises(embedlab.InvalidInputError, match="got shape"):
        compressor.score(queries, np.zeros((3, 40), np.int8))
    with pytest.raises(embedlab.InvalidInputError, match="dimension 40"):
        compressor.score(queries[:, :40], compressor.encode(vectors))
