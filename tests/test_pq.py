"""Product quantisation in the core, checked against FAISS's ProductQuantizer with the same centroids."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from embedlab.errors import ConfigError, InvalidInputError
from embedlab.pq import Codebooks, check_subspaces, train_codebooks


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(2000, 16)).astype(np.float32), rng.normal(size=(20, 16)).astype(np.float32)


@pytest.fixture(scope="module")
def books(data: tuple[np.ndarray, np.ndarray]) -> Codebooks:
    return train_codebooks(data[0], m=4, ksub=32, seed=3)


def faiss_pq(books: Codebooks) -> faiss.ProductQuantizer:
    pq = faiss.ProductQuantizer(books.dim, books.m, int(np.log2(books.ksub)))
    faiss.copy_array_to_vector(books.centroids.ravel(), pq.centroids)
    return pq


def test_encode_and_decode_match_faiss(books: Codebooks, data: tuple[np.ndarray, np.ndarray]) -> None:
    pq = faiss_pq(books)
    ours = books.encode(data[0])
    theirs = pq.compute_codes(data[0])  # 5-bit codes are packed: compare decoded vectors instead
    np.testing.assert_allclose(books.decode(ours), pq.decode(theirs), atol=1e-5)


def test_adc_scores_equal_scoring_the_decoded_vectors(books: Codebooks, data: tuple[np.ndarray, np.ndarray]) -> None:
    codes = books.encode(data[0])
    decoded = books.decode(codes)
    np.testing.assert_allclose(books.scores(data[1], codes), data[1] @ decoded.T, rtol=1e-4, atol=1e-4)
    l2 = -((data[1][:, None, :] - decoded[None]) ** 2).sum(-1)
    np.testing.assert_allclose(books.scores(data[1], codes, metric="l2"), l2, rtol=1e-4, atol=1e-3)


def test_training_is_deterministic_and_as_good_as_faiss(data: tuple[np.ndarray, np.ndarray]) -> None:
    a = train_codebooks(data[0], m=4, ksub=16, seed=1)
    b = train_codebooks(data[0], m=4, ksub=16, seed=1)
    np.testing.assert_array_equal(a.centroids, b.centroids)
    reference = faiss.ProductQuantizer(16, 4, 4)
    reference.train(data[0])
    ours = float(((a.decode(a.encode(data[0])) - data[0]) ** 2).sum())
    theirs = float(((reference.decode(reference.compute_codes(data[0])) - data[0]) ** 2).sum())
    assert ours < 1.03 * theirs


def test_float64_and_non_contiguous_input_are_accepted(books: Codebooks, data: tuple[np.ndarray, np.ndarray]) -> None:
    wide = np.asfortranarray(data[0][:50].astype(np.float64))
    np.testing.assert_array_equal(books.encode(wide), books.encode(data[0][:50]))


def test_bad_input_gets_clear_errors(books: Codebooks, data: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(ConfigError, match=r"not divisible by m=5.*\[1, 2, 4, 8, 16\]"):
        check_subspaces(16, 5)
    with pytest.raises(InvalidInputError, match="at least 256 training vectors"):
        train_codebooks(data[0][:100], m=4, ksub=256)
    bad = data[0][:10].copy()
    bad[6, 2] = np.nan
    with pytest.raises(InvalidInputError, match="row 6"):
        books.encode(bad)
    with pytest.raises(InvalidInputError, match=r"\[0, 32\)"):
        books.decode(np.full((1, 4), 40))
    with pytest.raises(InvalidInputError, match="shape"):
        books.scores(data[1], np.zeros((3, 5), dtype=np.uint8))
    assert books.bytes_per_vector == 4 and Codebooks(np.zeros((2, 300, 3))).bytes_per_vector == 4


def old_encode(books: Codebooks, x: np.ndarray) -> np.ndarray:
    """The encoder before blocks of 4,096 rows and in-place distances: one expression per subspace."""
    norms = np.einsum("jcd,jcd->jc", books.centroids, books.centroids)
    parts = x.reshape(-1, books.m, books.dsub)
    return np.stack([np.argmin(norms[j][None, :] - 2.0 * parts[:, j, :] @ books.centroids[j].T, axis=1)
                     for j in range(books.m)], axis=1)


def test_blocked_in_place_encoding_gives_the_same_codes(books: Codebooks, data: tuple[np.ndarray, np.ndarray],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import embedlab.pq as pq

    monkeypatch.setattr(pq, "BLOCK", 300)  # several blocks, the last one partial
    np.testing.assert_array_equal(books.encode(data[0]), old_encode(books, data[0]))


def test_query_scorer_scores_any_block_like_scores(books: Codebooks, data: tuple[np.ndarray, np.ndarray]) -> None:
    codes = books.encode(data[0])
    for metric in ("ip", "l2"):
        score = books.query_scorer(data[1], metric)
        whole = books.scores(data[1], codes, metric)
        np.testing.assert_array_equal(score(codes), whole.T)
        np.testing.assert_array_equal(score(codes[700:900]), whole[:, 700:900].T)
    assert books.table_bytes_per_query == 4 * 32 * 4


class RecordingRows:
    """An in-memory stand-in for a chunk store that records what each ``take`` returned."""

    def __init__(self, x: np.ndarray) -> None:
        self.x, self.dim, self.taken, self.buffers = x, x.shape[1], [], set()

    def take(self, positions: np.ndarray, columns: slice | None = None, out: np.ndarray | None = None) -> np.ndarray:
        rows = self.x[positions] if columns is None else self.x[positions, columns]
        if out is not None:
            out[...] = rows
            self.buffers.add(out.__array_interface__["data"][0])  # where each group was written
            rows = out
        self.taken.append(rows.nbytes)
        return rows


@pytest.mark.parametrize("max_bytes", [1, 2 * 1000 * 4 * 4, 1 << 30])
def test_training_from_chunks_reads_bounded_groups_and_equals_training_on_the_sample(
        data: tuple[np.ndarray, np.ndarray], max_bytes: int) -> None:
    from embedlab.pq import kmeans_trainer, subspace_groups, train_codebooks_from_chunks
    from embedlab.sampling import sample_positions

    rows = RecordingRows(data[0])
    positions = sample_positions(len(data[0]), 1000, seed=5)
    ours = train_codebooks_from_chunks(rows, positions, m=4, trainer=kmeans_trainer(16, seed=2, iterations=5),
                                       max_bytes=max_bytes)
    whole = train_codebooks(data[0][positions], m=4, ksub=16, seed=2, iterations=5)
    np.testing.assert_array_equal(ours.centroids, whole.centroids)
    groups = subspace_groups(4, 1000, 4, max_bytes)
    assert [len(g) for g in groups] == {1: [1, 1, 1, 1], 32000: [2, 2]}.get(max_bytes, [4])
    assert len(rows.taken) == len(groups)  # one read per group of columns, never the whole sample
    assert max(rows.taken) == max(len(g) for g in groups) * 1000 * 4 * 4
    assert max(rows.taken) <= max(max_bytes, 1000 * 4 * 4)
    assert len(rows.buffers) == 1  # every group read into the one buffer allocated for training


def test_faiss_codebooks_do_not_depend_on_the_grouping(data: tuple[np.ndarray, np.ndarray]) -> None:
    from embedlab.pq import faiss_trainer, train_codebooks_from_chunks

    trainer = faiss_trainer(16, seed=1, iterations=5)
    whole = trainer(data[0], range(4))
    grouped = train_codebooks_from_chunks(RecordingRows(data[0]), np.arange(len(data[0])), m=4, trainer=trainer,
                                          max_bytes=1)
    np.testing.assert_array_equal(grouped.centroids, whole)
    with pytest.raises(ConfigError, match="power of two"):
        faiss_trainer(24)


def test_training_from_chunks_returns_freed_memory(data: tuple[np.ndarray, np.ndarray], monkeypatch) -> None:
    import platform

    from embedlab import memory, pq
    from embedlab.sampling import sample_positions

    calls = []
    monkeypatch.setattr(pq, "release_freed_memory", lambda: calls.append(1) or True)
    pq.train_codebooks_from_chunks(RecordingRows(data[0]), sample_positions(len(data[0]), 500, seed=1), m=4,
                                   trainer=pq.kmeans_trainer(16, seed=2, iterations=2))
    assert calls == [1]
    assert memory.release_freed_memory() is (platform.libc_ver()[0] == "glibc")
    memory._malloc_trim.cache_clear()
    monkeypatch.setattr(memory.ctypes, "CDLL", lambda name: object())  # a C library without malloc_trim
    assert memory.release_freed_memory() is False
    memory._malloc_trim.cache_clear()
