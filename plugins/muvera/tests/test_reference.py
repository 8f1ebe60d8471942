"""Cross-check against muvfde (PyPI), a C++ port of Google's graph-mining FDE code.

Random matrices cannot match (the reference draws them with ``std::mt19937``), so:
* with ``k_sim = 0`` and the identity projection nothing is random: whole encodings must match;
* with ``k_sim > 0`` the reference's partition of every vector is read from its encoding of that
  vector alone (the one non-zero block), and its inner projection (AMS sketch) from its
  encodings of the basis vectors; our :func:`fde_blocks` given those must reproduce the
  reference's encodings of whole point clouds: partition numbering (Gray code), block layout,
  sums, averages and Hamming-nearest filling of empty partitions, repetition by repetition.
"""

from __future__ import annotations

import muvfde
import numpy as np
import pytest
from embedlab_muvera import encode_documents_fde, encode_queries_fde
from embedlab_muvera.fde import fde_blocks, gray_bits

from embedlab import MultiVectorEmbeddings

DIM, SEED = 8, 7


def reference(points: np.ndarray, *, k_sim: int, reps: int = 1, document: bool = False, fill: bool = False,
              d_proj: int | None = None) -> np.ndarray:
    config = muvfde.fixed_dimensional_encoding_config().set_num_repetitions(reps) \
        .set_num_simhash_projections(k_sim).set_seed(SEED) \
        .set_encoding_type(muvfde.encoding_type.AVERAGE if document else muvfde.encoding_type.DEFAULT_SUM) \
        .enable_fill_empty(fill)
    if d_proj is not None:
        config = config.set_projection_type(muvfde.projection_type.AMS_SKETCH).set_projection_dimension(d_proj)
    return np.asarray(muvfde.generate_fixed_dimensional_encoding(np.ascontiguousarray(points, np.float32),
                                                                 config))


@pytest.fixture
def clouds() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.standard_normal((n, DIM)).astype(np.float32) for n in (5, 1, 3, 12, 7, 2, 9)]


def test_whole_encodings_match_without_randomness(clouds) -> None:
    items = MultiVectorEmbeddings.from_list(clouds)
    ours_q = encode_queries_fde(items, k_sim=0, d_proj=None, R_reps=3)
    ours_d = encode_documents_fde(items, k_sim=0, d_proj=None, R_reps=3)
    np.testing.assert_allclose(ours_q, [reference(c, k_sim=0, reps=3) for c in clouds], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ours_d, [reference(c, k_sim=0, reps=3, document=True) for c in clouds],
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("d_proj", [None, 4])
@pytest.mark.parametrize("k_sim", [2, 3])
def test_blocks_match_given_the_reference_partitions(clouds, k_sim: int, d_proj: int | None) -> None:
    reps, n_parts = 2, 1 << k_sim
    items = MultiVectorEmbeddings.from_list(clouds)
    width = DIM if d_proj is None else d_proj
    # The reference's partition of each vector, per repetition: its single non-zero block.
    alone = np.stack([reference(x[None], k_sim=k_sim, reps=reps, d_proj=d_proj) for x in items.vectors])
    nonzero = np.abs(alone.reshape(len(items.vectors), reps, n_parts, width)).sum(-1) > 0
    assert (nonzero.sum(-1) == 1).all()
    partitions = nonzero.argmax(-1)  # (vectors, reps)
    if d_proj is None:
        projected = [items.vectors] * reps
    else:  # the reference's AMS sketches: its encodings of the basis vectors
        basis = np.stack([reference(e[None], k_sim=0, reps=reps, d_proj=d_proj) for e in np.eye(DIM)])
        projected = [items.vectors @ basis.reshape(DIM, reps, width)[:, rep] for rep in range(reps)]

    def ours(document: bool, fill: bool) -> np.ndarray:
        return np.concatenate([fde_blocks(projected[rep], gray_bits(partitions[:, rep], k_sim).astype(bool),
                                          items.offsets, average=document, fill_empty=fill)
                               for rep in range(reps)], axis=1)

    for document, fill in ((False, False), (True, False), (True, True)):
        theirs = [reference(c, k_sim=k_sim, reps=reps, document=document, fill=fill, d_proj=d_proj) for c in clouds]
        np.testing.assert_allclose(ours(document, fill), theirs, rtol=1e-6, atol=1e-6)
    assert not np.array_equal(ours(True, True), ours(True, False))  # some partition was filled

