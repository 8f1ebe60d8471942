"""Fixed Dimensional Encodings against hand-computed values and the paper's properties."""

from __future__ import annotations

import numpy as np
import pytest
from embedlab_muvera import FDEConfig, MuveraIndex, encode_documents_fde, encode_queries_fde
from embedlab_muvera import fde as fde_module
from embedlab_muvera.fde import gray_bits, inner_projection, partition_index, simhash_matrix

from embedlab import ConfigError, InvalidInputError, MultiVectorEmbeddings
from embedlab.index import maxsim_scores

MV = MultiVectorEmbeddings.from_list


def test_k_sim_0_identity_is_sum_for_queries_and_mean_for_documents() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], np.float32)
    items = MV([x, x[:1]])
    queries = encode_queries_fde(items, k_sim=0, d_proj=None, R_reps=3)
    documents = encode_documents_fde(items, k_sim=0, d_proj=None, R_reps=3)
    np.testing.assert_array_equal(queries, [[5, 7, 9] * 3, [1, 2, 3] * 3])
    np.testing.assert_array_equal(documents, [[2.5, 3.5, 4.5] * 3, [1, 2, 3] * 3])
    # k_sim = 0, R = 1, identity: <F_q, F_d> = <sum q, mean p>
    q, p = MV([x]), MV([x[::-1] * 2])
    fq, fd = (encode_queries_fde(q, k_sim=0, d_proj=None, R_reps=1),
              encode_documents_fde(p, k_sim=0, d_proj=None, R_reps=1))
    assert (fq @ fd.T)[0, 0] == pytest.approx(float(x.sum(0) @ (2 * x).mean(0)))


def test_k_sim_1_partitions_by_one_hyperplane_and_only_documents_fill() -> None:
    config = FDEConfig(k_sim=1, d_proj=None, R_reps=1, fill_empty_partitions=True, seed=3)
    v = np.array([1.0, -2.0, 0.5], np.float32)
    side = int(v @ simhash_matrix(config, 3, 0)[:, 0] > 0)  # partition of v (and of 2v); -v: the other
    query = encode_queries_fde(MV([np.stack([v, 2 * v, -v])]), config).reshape(2, 3)
    np.testing.assert_allclose(query[side], 3 * v)
    np.testing.assert_allclose(query[1 - side], -v)
    document = encode_documents_fde(MV([np.stack([v, 2 * v, -v])]), config).reshape(2, 3)
    np.testing.assert_allclose(document[side], 1.5 * v)
    np.testing.assert_allclose(document[1 - side], -v)
    # {v, 2v}: one partition empty. Documents fill it with the Hamming-nearest vector (both are
    # at distance 1: the first, v); queries leave it zero although the config says fill.
    pair = MV([np.stack([v, 2 * v])])
    filled = encode_documents_fde(pair, config).reshape(2, 3)
    np.testing.assert_allclose(filled[side], 1.5 * v)
    np.testing.assert_allclose(filled[1 - side], v)
    unfilled = encode_documents_fde(pair, k_sim=1, d_proj=None, R_reps=1, fill_empty_partitions=False,
                                    seed=3).reshape(2, 3)
    np.testing.assert_array_equal(unfilled[1 - side], 0)
    empty_query = encode_queries_fde(pair, config).reshape(2, 3)
    np.testing.assert_array_equal(empty_query[1 - side], 0)
    np.testing.assert_allclose(empty_query[side], 3 * v)


def test_fill_picks_the_hamming_nearest_vector() -> None:
    config = FDEConfig(k_sim=3, d_proj=None, R_reps=1, seed=5)
    points = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    bits = (points @ simhash_matrix(config, 6, 0) > 0).astype(int)
    encoded = encode_documents_fde(MV([points]), config).reshape(8, 6)
    own = partition_index(bits.astype(bool))
    for part in range(8):
        members = points[own == part]
        if members.size:
            np.testing.assert_allclose(encoded[part], members.mean(0), rtol=1e-6)
        else:  # by brute force: the first point with the fewest disagreeing bits
            distance = np.abs(bits - gray_bits(np.array([part]), 3)).sum(1)
            np.testing.assert_array_equal(encoded[part], points[np.argmin(distance)])


def test_partition_numbering_is_the_gray_decoding_of_the_bits() -> None:
    every = np.array([[(i >> s) & 1 for s in (3, 2, 1, 0)] for i in range(16)], dtype=bool)
    ids = partition_index(every)
    assert sorted(ids.tolist()) == list(range(16))  # a bijection
    np.testing.assert_array_equal(gray_bits(ids, 4), every)
    assert partition_index(np.array([[1, 1], [1, 0], [0, 1]], dtype=bool)).tolist() == [2, 3, 1]


def test_fde_product_equals_chamfer_when_each_query_vector_meets_only_its_nearest() -> None:
    """One document vector per partition, each query vector in its nearest one's partition."""
    config = FDEConfig(k_sim=2, d_proj=None, R_reps=1, seed=11)
    hyperplanes = simhash_matrix(config, 8, 0)
    candidates = np.random.default_rng(1).standard_normal((400, 8)).astype(np.float32)
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    ids = partition_index(candidates @ hyperplanes > 0)
    document = np.stack([candidates[np.flatnonzero(ids == part)[0]] for part in range(4)])
    queries = MV([document * np.float32(0.5)])  # same partitions, nearest = the same direction
    product = encode_queries_fde(queries, config) @ encode_documents_fde(MV([document]), config).T
    assert product[0, 0] == pytest.approx(float(maxsim_scores(queries, MV([document]))[0, 0]), rel=1e-6)


def test_dimensions_and_projections() -> None:
    items = MV([np.ones((3, 10))])
    assert encode_queries_fde(items, k_sim=3, d_proj=4, R_reps=5).shape == (1, 5 * 8 * 4)
    assert encode_documents_fde(items, k_sim=3, d_proj=None, R_reps=2).shape == (1, 2 * 8 * 10)
    assert encode_documents_fde(items, k_sim=3, d_proj=4, R_reps=5, final_dim=17).shape == (1, 17)
    assert FDEConfig(k_sim=3, d_proj=4, R_reps=5).fde_dim(10) == 160
    dense = inner_projection(FDEConfig(d_proj=8), 10, 0)
    np.testing.assert_allclose(np.abs(dense), 1 / np.sqrt(8), rtol=1e-6)  # paper: +-1 / sqrt(d_proj)
    sparse = inner_projection(FDEConfig(d_proj=8, projection="sparse"), 10, 0)
    np.testing.assert_array_equal(np.abs(sparse).sum(1), 1)  # reference: one signed 1 per coordinate
    assert inner_projection(FDEConfig(d_proj=None), 10, 0) is None


@pytest.mark.parametrize("projection", ["dense", "sparse"])
def test_inner_projection_is_unbiased(projection: str) -> None:
    """With k_sim = 0 the FDE product is the sum over repetitions of <psi_r x, psi_r y>."""
    x, y = np.zeros((2, 1, 16), np.float32)
    x[0, 0], y[0, :2] = 1.0, (0.6, 0.8)  # unit vectors, <x, y> = 0.6
    config = FDEConfig(k_sim=0, d_proj=4, R_reps=600, projection=projection)
    product = encode_queries_fde(MV([x]), config) @ encode_documents_fde(MV([y]), config).T
    assert product[0, 0] / config.R_reps == pytest.approx(0.6, abs=0.1)  # about 4 standard deviations


@pytest.mark.parametrize("projection", ["dense", "sparse"])
def test_final_projection_preserves_products(corpus, projection: str) -> None:
    queries, documents = corpus
    base = dict(k_sim=3, d_proj=8, R_reps=10, seed=4, projection=projection)  # 640 coordinates
    full = encode_queries_fde(queries, **base) @ encode_documents_fde(documents, **base).T

    def correlation(final_dim: int) -> float:
        small = encode_queries_fde(queries, **base, final_dim=final_dim) @ \
            encode_documents_fde(documents, **base, final_dim=final_dim).T
        return float(np.corrcoef(full.ravel(), small.ravel())[0, 1])

    low, high = correlation(160), correlation(2560)
    assert 0.5 < low < high
    assert high > 0.95


def test_fde_inner_product_approximates_chamfer(corpus) -> None:
    queries, documents = corpus
    chamfer = maxsim_scores(queries, documents).ravel()

    def correlation(reps: int) -> float:
        config = FDEConfig(k_sim=3, d_proj=None, R_reps=reps, seed=0)
        product = encode_queries_fde(queries, config) @ encode_documents_fde(documents, config).T
        return float(np.corrcoef(product.ravel(), chamfer)[0, 1])

    one, twenty = correlation(1), correlation(20)
    assert twenty > 0.8
    assert twenty > one + 0.1


def test_deterministic_given_seed(corpus) -> None:
    queries, documents = corpus
    first = encode_documents_fde(documents, k_sim=4, d_proj=8, R_reps=3, seed=9)
    again = encode_documents_fde(documents, k_sim=4, d_proj=8, R_reps=3, seed=9)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, encode_documents_fde(documents, k_sim=4, d_proj=8, R_reps=3, seed=10))
    np.testing.assert_array_equal(encode_queries_fde(queries, k_sim=4, R_reps=2, final_dim=64),
                                  encode_queries_fde(queries, k_sim=4, R_reps=2, final_dim=64))


def test_batches_do_not_change_the_result(corpus, monkeypatch) -> None:
    _, documents = corpus
    config = FDEConfig(k_sim=3, d_proj=8, R_reps=2, final_dim=50)
    whole = encode_documents_fde(documents, config)
    monkeypatch.setattr(fde_module, "BATCH_ENTRIES", 300)  # a few documents per batch
    np.testing.assert_allclose(encode_documents_fde(documents, config), whole, rtol=1e-5, atol=1e-6)


def test_documents_without_vectors_or_with_zero_vectors_encode_to_zeros() -> None:
    items = MV([np.zeros((0, 4)), np.zeros((3, 4)), np.ones((2, 4))])
    for k_sim in (0, 3):
        for encode in (encode_documents_fde, encode_queries_fde):
            encoded = encode(items, k_sim=k_sim, d_proj=None, R_reps=2, fill_empty_partitions=True)
            np.testing.assert_array_equal(encoded[:2], 0)  # no vectors; all-zero vectors
            assert np.abs(encoded[2]).sum() > 0
    zero = np.zeros(4, np.float32)
    assert partition_index(zero[None] @ simhash_matrix(FDEConfig(k_sim=3), 4, 0) > 0).tolist() == [0]


@pytest.mark.parametrize("params", [
    {"k_sim": 31}, {"k_sim": -1}, {"k_sim": 2.0}, {"d_proj": 0}, {"R_reps": 0}, {"R_reps": True},
    {"seed": -1}, {"final_dim": 0}, {"projection": "gaussian"}, {"fill_empty_partitions": 1},
])
def test_bad_parameters_raise_config_error(params: dict) -> None:
    with pytest.raises(ConfigError):
        encode_queries_fde(MV([np.ones((1, 4))]), **params)
    with pytest.raises(ConfigError):
        MuveraIndex(**params)


def test_k_sim_31_message_says_the_range() -> None:
    with pytest.raises(ConfigError, match=r"k_sim must be an integer in \[0, 30\]"):
        FDEConfig(k_sim=31)


def test_inputs_must_be_multi_vector() -> None:
    with pytest.raises(InvalidInputError, match="MultiVectorEmbeddings"):
        encode_queries_fde(np.ones((2, 4), np.float32))
    with pytest.raises(ConfigError, match="not both"):
        encode_queries_fde(MV([np.ones((1, 4))]), FDEConfig(), k_sim=2)
