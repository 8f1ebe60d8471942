"""Search correctness against FAISS and decoded vectors, filters, determinism and persistence."""

from __future__ import annotations

import embedlab_distillvq.distill as distill_module
import faiss
import numpy as np
import pytest
from embedlab_distillvq import DistillVQIndex
from embedlab_distillvq.quantizer import faiss_ivfpq

import embedlab
from embedlab.errors import StateError
from embedlab.index.exact import ExactIndex


def recall(truth: np.ndarray, found: np.ndarray, k: int) -> float:
    return float(np.mean([len(set(t[:k]) & set(f[:k])) / k for t, f in zip(truth, found)]))


def test_registered_as_index():
    index = embedlab.create("index", "distillvq", nlist=4)
    assert isinstance(index, DistillVQIndex) and index.config.nlist == 4


def test_without_distillation_it_is_faiss_ivfpq(data, small):
    docs, queries = data
    index = small(epochs=0)
    index.build(docs)
    reference = faiss_ivfpq(32, 16, 8, 16, seed=0)
    reference.train(docs)
    reference.add(docs)
    reference.nprobe = 2
    scores, ids = reference.search(queries, 10)
    ours = index.search(queries, 10)
    assert (ours.indices == ids).mean() > 0.97
    np.testing.assert_allclose(ours.scores, scores, rtol=1e-4, atol=1e-4)


def test_full_probe_adc_equals_scoring_decoded_vectors(data, small):
    docs, queries = data
    index = small()
    index.build(docs)
    q = index.quantizer
    decoded = q.centroids[index.lists] + q.books.decode(index.codes)
    exact = queries @ decoded.T
    result = index.search(queries, 25, nprobe=16)
    np.testing.assert_allclose(result.scores, np.take_along_axis(exact, result.indices, axis=1), atol=1e-5)
    np.testing.assert_allclose(result.scores, -np.sort(-exact, axis=1)[:, :25], atol=1e-5)


def test_more_probes_never_lower_recall_and_bytes(data, small):
    docs, queries = data
    index = small()
    index.build(docs)
    truth = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    values = [recall(truth, index.search(queries, 10, nprobe=n).indices, 10) for n in (1, 4, 16)]
    assert values[0] <= values[1] <= values[2] and values[2] > 0.3
    assert index.bytes_per_vector == 8 and len(index) == 1500 and index.memory_bytes > 1500 * 8


def test_distillation_lowers_the_validation_loss(data, small):
    docs, _ = data
    index = small(epochs=3, lr_ivf=1e-3, lr_pq=1e-4).fit(docs)
    assert len(index.history) >= 2 and min(index.history[1:]) < index.history[0]


def test_filters_mask_and_per_query(data, small):
    docs, queries = data
    index = small(epochs=0)
    index.build(docs, attributes={"even": np.arange(1500) % 2 == 0})
    masked = index.search(queries, 10, filter=np.arange(1500) % 2 == 0, nprobe=16)
    assert (masked.indices % 2 == 0).all()
    by_dict = index.search(queries, 10, filter={"even": True}, nprobe=16)
    np.testing.assert_array_equal(by_dict.indices, masked.indices)
    per_query = np.zeros((len(queries), 1500), dtype=bool)
    per_query[:, 7] = True
    one = index.search(queries, 3, filter=per_query, nprobe=16)
    assert (one.indices[:, 0] == 7).all() and (one.indices[:, 1:] == -1).all()
    assert np.isneginf(one.scores[:, 1:]).all()


def test_same_seed_same_codes_and_other_seed_differs(data, small):
    docs, _ = data
    a, b, c = small(), small(), small(seed=1)
    for index in (a, b, c):
        index.build(docs)
    np.testing.assert_array_equal(a.codes, b.codes)
    np.testing.assert_array_equal(a.lists, b.lists)
    np.testing.assert_array_equal(a.quantizer.centroids, b.quantizer.centroids)
    assert not np.array_equal(a.quantizer.centroids, c.quantizer.centroids)


def test_save_load_reproduces_codes_and_results(data, tmp_path, small):
    docs, queries = data
    index = small()
    index.build(docs, attributes={"group": np.arange(1500) % 3})
    index.save(tmp_path / "vq")
    loaded = DistillVQIndex.load(tmp_path / "vq")
    np.testing.assert_array_equal(loaded.codes, index.codes)
    np.testing.assert_array_equal(loaded.quantizer.encode(docs)[1], index.codes)
    before, after = index.search(queries, 10, filter={"group": 1}), loaded.search(queries, 10, filter={"group": 1})
    np.testing.assert_array_equal(after.indices, before.indices)
    np.testing.assert_array_equal(after.scores, before.scores)
    assert loaded.history == index.history


def test_loading_foreign_or_tampered_state_is_rejected(data, tmp_path, small):
    docs, _ = data
    exact = ExactIndex()
    exact.build(docs)
    exact.save(tmp_path / "exact")
    with pytest.raises(StateError, match="exact"):
        DistillVQIndex.load(tmp_path / "exact")
    index = small(epochs=0)
    index.build(docs)
    index.save(tmp_path / "vq")
    other = small(epochs=0, ksub=8)
    other.build(docs)
    other.save(tmp_path / "other")
    # Codes from another compressor's state: checksums (and shapes) no longer match.
    (tmp_path / "vq" / "codes.npy").write_bytes((tmp_path / "other" / "codes.npy").read_bytes())
    with pytest.raises(StateError):
        DistillVQIndex.load(tmp_path / "vq")


def test_ctrl_c_leaves_the_index_unchanged(data, monkeypatch, small):
    docs, queries = data
    index = small()
    index.build(docs)
    before = index.search(queries, 10)
    codes, centroids = index.codes.copy(), index.quantizer.centroids.copy()
    calls = {"n": 0}
    original = distill_module.batch_loss

    def interrupt(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(distill_module, "batch_loss", interrupt)
    with pytest.raises(KeyboardInterrupt):
        index.fit(docs[::-1].copy())
    assert calls["n"] == 4
    np.testing.assert_array_equal(index.codes, codes)
    np.testing.assert_array_equal(index.quantizer.centroids, centroids)
    after = index.search(queries, 10)
    np.testing.assert_array_equal(after.indices, before.indices)


def test_faiss_thread_setting_is_restored(data, small):
    faiss.omp_set_num_threads(1)
    small(epochs=0, threads=2).fit(data[0])
    assert faiss.omp_get_max_threads() == 1


def test_early_stop_keeps_the_initial_quantisers_when_nothing_improves(data, small):
    docs, queries = data
    plain = small(epochs=0)
    plain.build(docs)
    diverging = small(epochs=6, patience=1, lr_ivf=5.0, lr_pq=5.0)
    diverging.build(docs)
    assert len(diverging.history) == 2 and diverging.history[1] >= diverging.history[0]
    np.testing.assert_array_equal(diverging.quantizer.centroids, plain.quantizer.centroids)
    np.testing.assert_array_equal(diverging.codes, plain.codes)
