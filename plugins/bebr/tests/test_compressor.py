"""Training, determinism, persistence and bad input of the ``bebr`` compressor."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from embedlab_bebr import BEBRCompressor, training

import embedlab
from embedlab import ConfigError, InvalidInputError, NotFittedError, StateError
from embedlab.index import ExactIndex


def relative_error(compressor: BEBRCompressor, x: np.ndarray) -> float:
    decoded = compressor.decode(compressor.encode(x))
    return float(np.mean(np.sum((decoded - x) ** 2, axis=1)))


def test_registered_as_a_compressor_and_code_scorer(fitted: BEBRCompressor) -> None:
    assert "bebr" in embedlab.registry().names("compressor")
    created = embedlab.create("compressor", "bebr", bits_per_dim=3)
    assert isinstance(created, BEBRCompressor) and created.config.bits_per_dim == 3
    assert isinstance(fitted, embedlab.Compressor) and isinstance(fitted, embedlab.CodeScorer)


def test_codes_are_packed_bits_of_the_exact_size(fitted: BEBRCompressor, vectors: np.ndarray) -> None:
    codes = fitted.encode(vectors)
    assert codes.dtype == np.uint8 and codes.shape == (len(vectors), 8)
    assert fitted.bytes_per_vector == 8.0 == codes.nbytes / len(codes)
    assert fitted.decode(codes).shape == vectors.shape and fitted.decode(codes).dtype == np.float32
    wide = BEBRCompressor(bits_per_dim=3, code_dim=64, epochs=1, hidden=(), batch_size=64, num_threads=1)
    assert wide.fit(vectors).encode(vectors[:3]).shape == (3, 24) and wide.bytes_per_vector == 24.0
    assert fitted.encode(np.zeros((0, 32))).shape == (0, 8)


def test_reconstruction_error_decreases_with_more_bits(vectors: np.ndarray, fast: dict) -> None:
    errors = [relative_error(BEBRCompressor(bits_per_dim=b, **{**fast, "epochs": 8}).fit(vectors), vectors)
              for b in (1, 2, 4)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.7 * errors[0]


def test_training_lowers_the_loss(fitted: BEBRCompressor) -> None:
    history = fitted.loss_history
    assert len(history) == 4 and history[-1] < history[0]


def test_more_bits_rank_closer_to_exact_search(vectors: np.ndarray, queries: np.ndarray, fast: dict) -> None:
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]

    def overlap(bits: int) -> float:
        compressor = BEBRCompressor(bits_per_dim=bits, **{**fast, "epochs": 8}).fit(vectors)
        top = np.argsort(-compressor.score(queries, compressor.encode(vectors)), axis=1)[:, :10]
        return np.mean([len(set(a) & set(b)) for a, b in zip(exact, top)])

    assert overlap(4) > overlap(1)


def test_two_fits_with_one_seed_give_identical_codes(vectors: np.ndarray, fast: dict) -> None:
    torch.manual_seed(123)  # the global generator must not matter
    first = BEBRCompressor(seed=7, **fast).fit(vectors).encode(vectors)
    state = torch.random.get_rng_state()
    second = BEBRCompressor(seed=7, **fast).fit(vectors).encode(vectors)
    assert torch.equal(torch.random.get_rng_state(), state)  # and is left as it was
    other = BEBRCompressor(seed=8, **fast).fit(vectors).encode(vectors)
    np.testing.assert_array_equal(first, second)
    assert (first != other).any()


def test_float64_and_non_contiguous_input_are_accepted(fitted: BEBRCompressor, vectors: np.ndarray,
                                                      fast: dict) -> None:
    codes = fitted.encode(vectors[:40])
    np.testing.assert_array_equal(fitted.encode(vectors[:40].astype(np.float64)), codes)
    strided = np.zeros((40, 64), np.float32)
    strided[:, ::2] = vectors[:40]
    np.testing.assert_array_equal(fitted.encode(strided[:, ::2]), codes)
    np.testing.assert_array_equal(fitted.encode(np.asfortranarray(vectors[:40])), codes)
    refit = BEBRCompressor(bits_per_dim=2, **fast).fit(np.asfortranarray(vectors.astype(np.float64)))
    np.testing.assert_array_equal(refit.encode(vectors[:40]), codes)


def test_save_and_load_give_identical_codes_and_scores(fitted: BEBRCompressor, vectors: np.ndarray,
                                                       queries: np.ndarray, tmp_path) -> None:
    fitted.save(tmp_path / "bebr")
    assert not list((tmp_path / "bebr").glob("*.pt")) and (tmp_path / "bebr" / "mean.npy").is_file()
    loaded = embedlab.load_component(tmp_path / "bebr")
    assert isinstance(loaded, BEBRCompressor) and loaded.config == fitted.config
    codes = fitted.encode(vectors)
    np.testing.assert_array_equal(loaded.encode(vectors), codes)
    np.testing.assert_array_equal(loaded.score(queries, codes), fitted.score(queries, codes))
    np.testing.assert_array_equal(loaded.decode(codes), fitted.decode(codes))
    assert loaded.loss_history == pytest.approx(fitted.loss_history)


def test_loading_another_components_state_is_rejected(vectors: np.ndarray, tmp_path) -> None:
    index = ExactIndex()
    index.build(vectors)
    index.save(tmp_path / "index")
    with pytest.raises(StateError, match="expected kind 'compressor'"):
        BEBRCompressor.load(tmp_path / "index")


def test_state_not_matching_its_config_is_rejected(fitted: BEBRCompressor, tmp_path) -> None:
    fitted.save(tmp_path / "bebr")
    manifest = tmp_path / "bebr" / "manifest.json"
    data = json.loads(manifest.read_text())
    data["config"]["bits_per_dim"] = 3
    manifest.write_text(json.dumps(data))
    with pytest.raises(StateError, match="do not match a bebr network"):
        BEBRCompressor.load(tmp_path / "bebr")


def test_codes_of_another_configuration_are_rejected(fitted: BEBRCompressor, vectors: np.ndarray,
                                                     queries: np.ndarray, fast: dict) -> None:
    other = BEBRCompressor(bits_per_dim=3, **fast).fit(vectors)
    foreign = other.encode(vectors[:5])
    for use in (fitted.decode, lambda c: fitted.score(queries, c)):
        with pytest.raises(InvalidInputError, match="another compressor"):
            use(foreign)
    with pytest.raises(InvalidInputError, match="uint8"):
        fitted.decode(fitted.encode(vectors[:5]).astype(np.int64))


def test_an_index_with_another_compressors_state_does_not_load(
        fitted: BEBRCompressor, vectors: np.ndarray, fast: dict, tmp_path) -> None:
    index = ExactIndex()
    index.use_compressor(fitted)
    index.build(vectors)
    index.save(tmp_path / "index")
    BEBRCompressor(bits_per_dim=1, **fast).fit(vectors).save(tmp_path / "index" / "compressor")
    with pytest.raises(StateError, match="not the part saved with"):
        ExactIndex.load(tmp_path / "index")


def test_too_few_fit_vectors_say_how_many_are_needed(vectors: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="at least batch_size=64 fit vectors.*got 63"):
        BEBRCompressor(batch_size=64).fit(vectors[:63])


def test_nan_in_fit_vectors_is_rejected_with_the_row(vectors: np.ndarray) -> None:
    bad = vectors.copy()
    bad[17, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 17"):
        BEBRCompressor(batch_size=64).fit(bad)


def test_wrong_dimensions_are_rejected(fitted: BEBRCompressor, vectors: np.ndarray) -> None:
    with pytest.raises(InvalidInputError, match="dimension 16 does not match the expected 32"):
        fitted.encode(vectors[:, :16])
    with pytest.raises(InvalidInputError, match="multiple of 8"):
        BEBRCompressor(batch_size=64).fit(vectors[:, :30])


def test_unfitted_use_raises(vectors: np.ndarray) -> None:
    compressor = BEBRCompressor()
    for use in (compressor.encode, lambda x: compressor.bytes_per_vector, lambda x: compressor.save("x")):
        with pytest.raises(NotFittedError, match="call fit"):
            use(vectors)


@pytest.mark.parametrize("params", [{"bits_per_dim": 0}, {"bits_per_dim": 9}, {"code_dim": 20},
                                    {"batch_size": 65}, {"hidden": (0,)}, {"lr": 0}, {"scoring": "hamming"},
                                    {"epochs": 1.5}, {"num_threads": 0}, {"unknown": 1}])
def test_invalid_parameters_are_rejected(params: dict) -> None:
    with pytest.raises(ConfigError):
        BEBRCompressor(**params)


def test_ctrl_c_during_fit_leaves_the_compressor_as_it_was(vectors: np.ndarray, fast: dict,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    compressor = BEBRCompressor(**fast).fit(vectors)
    before = compressor.encode(vectors)
    calls = []
    real = training.batch_loss

    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003 - same signature as batch_loss
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "batch_loss", interrupted)
    threads = torch.get_num_threads()
    with pytest.raises(KeyboardInterrupt):
        compressor.fit(vectors[::-1].copy())
    np.testing.assert_array_equal(compressor.encode(vectors), before)
    assert torch.get_num_threads() == threads
    fresh = BEBRCompressor(**fast)
    calls.clear()
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(vectors)
    with pytest.raises(NotFittedError):
        fresh.encode(vectors)


def top10_overlap(scores: np.ndarray, exact: np.ndarray) -> float:
    top = np.argsort(-scores, axis=1)[:, :10]
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, top)]))


def test_the_papers_contrastive_objective_trains(vectors: np.ndarray, queries: np.ndarray, fast: dict) -> None:
    """objective="nce": each decoded code must pick its own float vector among the batch's."""
    compressor = BEBRCompressor(bits_per_dim=2, objective="nce", **{**fast, "epochs": 8}).fit(vectors)
    assert compressor.loss_history[-1] < compressor.loss_history[0]
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    codes = compressor.encode(vectors)
    random_codes = np.random.default_rng(0).integers(0, 256, codes.shape, dtype=np.uint8)
    assert top10_overlap(compressor.score(queries, codes), exact) > 2 * top10_overlap(
        compressor.score(queries, random_codes), exact)


def test_backward_compatible_codes_search_an_index_of_old_codes(vectors: np.ndarray, queries: np.ndarray,
                                                                fast: dict) -> None:
    """An "upgraded model" (a rotated, noisy copy of the vectors): new query codes trained for
    compatibility find the old codes' neighbours; independently trained ones do not."""
    rng = np.random.default_rng(7)
    rotation = np.linalg.qr(rng.standard_normal((32, 32)))[0].astype(np.float32)
    old_docs = (vectors + 0.05 * rng.standard_normal(vectors.shape)).astype(np.float32)
    new_docs, new_queries = vectors @ rotation, queries @ rotation
    params = {**fast, "epochs": 8, "bits_per_dim": 2, "objective": "nce"}
    old = BEBRCompressor(**params).fit(old_docs)
    old_index = old.encode(old_docs)
    exact = np.argsort(-(new_queries @ new_docs.T), axis=1)[:, :10]
    independent = BEBRCompressor(**params).fit(new_docs)
    compatible = BEBRCompressor(**params).fit(new_docs, compatible_with=old, old_vectors=old_docs)
    crossed = top10_overlap(compatible.score(new_queries, old_index), exact)
    old_on_old = top10_overlap(old.score(queries, old_index), np.argsort(-(queries @ old_docs.T), axis=1)[:, :10])
    assert crossed > 0.8 * old_on_old  # as good as the old model searching its own codes (0.46 vs 0.46)
    assert crossed > 10 * top10_overlap(independent.score(new_queries, old_index), exact)  # (vs 0.003)


def test_backward_compatible_training_input_errors(vectors: np.ndarray, fitted: BEBRCompressor, fast: dict) -> None:
    new = BEBRCompressor(bits_per_dim=2, **fast)
    with pytest.raises(InvalidInputError, match="needs both compatible_with"):
        new.fit(vectors, compatible_with=fitted)
    with pytest.raises(InvalidInputError, match="same layout"):
        BEBRCompressor(bits_per_dim=3, **fast).fit(vectors, compatible_with=fitted, old_vectors=vectors)
    with pytest.raises(InvalidInputError, match="100 old_vectors for 512"):
        new.fit(vectors, compatible_with=fitted, old_vectors=vectors[:100])
    with pytest.raises(NotFittedError):
        new.fit(vectors, compatible_with=BEBRCompressor(bits_per_dim=2, **fast), old_vectors=vectors)
