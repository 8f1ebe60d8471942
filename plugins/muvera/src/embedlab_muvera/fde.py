"""Fixed Dimensional Encodings (FDE) of MUVERA (Dhulipala et al., NeurIPS 2024, arXiv 2405.19504).

An FDE maps a set of vectors (a point cloud) to one vector such that the inner product of a query
FDE with a document FDE approximates their Chamfer (MaxSim) similarity
``sum_q max_p <q, p>``. For each of ``R_reps`` independent repetitions ``r``:

1. **SimHash partition.** ``k_sim`` Gaussian hyperplanes ``G_r`` (``dim x k_sim``) give every
   vector ``x`` the sign bits ``b_i = [<g_i, x> > 0]``; its partition is one of ``B = 2**k_sim``.
   Partitions are numbered as in Google's reference code (graph-mining
   ``sketching/point_cloud/fixed_dimensional_encoding.cc``): the bits, read as a Gray code, are
   decoded to binary (``id = prefix-XOR of the bits``, first bit most significant); partition
   ``j`` therefore holds the points whose bits equal ``j ^ (j >> 1)``. ``k_sim = 0``: one partition.
2. **Inner projection** ``psi_r``: identity when ``d_proj`` is None; otherwise ``d_proj``
   coordinates, ``"dense"`` as the paper defines it (``S x / sqrt(d_proj)``, ``S`` uniform
   +-1) or ``"sparse"`` as the reference code (each input coordinate added with a random sign
   into one random output coordinate, unscaled). Both are unbiased: ``E<psi x, psi y> = <x, y>``.
3. **Blocks.** Partition ``j`` of repetition ``r`` owns coordinates
   ``[(r * B + j) * d_proj, (r * B + j + 1) * d_proj)``. A query block is the **sum** of
   ``psi_r(q)`` over its query vectors in that partition; a document block is the **average**
   (centroid) of ``psi_r(p)`` over its document vectors there.
4. **fill_empty_partitions** (documents only; queries never fill): an empty document block takes
   ``psi_r(p*)`` of the document vector ``p*`` whose sign bits are closest in Hamming distance to
   the partition's bits (ties: the first such vector). Ignored when ``k_sim = 0``.
5. **Final projection** (optional): the ``R_reps * B * d_proj`` coordinates are projected to
   ``final_dim``, ``"dense"`` (paper: +-1 entries scaled by ``1 / sqrt(final_dim)``) or
   ``"sparse"`` (reference code: Count-Sketch, one random signed bucket per coordinate).

Edge cases, by the same definitions: an item without vectors encodes to all zeros (nothing to
sum, average or fill with); an all-zero vector has every bit 0 (``<g, 0> > 0`` is false), so it
lands in partition 0 and adds ``psi(0) = 0``.

All random matrices come from ``numpy.random.default_rng([seed, purpose, repetition])``: the
encodings are deterministic given ``seed``, and query and document FDEs built with the same
config share every partition and projection. The work is vectorised (matrix products, one sparse
aggregation per repetition); the loops run over repetitions and batches of items.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import attrs
import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from embedlab.components import make_config
from embedlab.embeddings import MultiVectorEmbeddings
from embedlab.errors import ConfigError, InvalidInputError

#: ``2**k_sim`` partitions must stay addressable in 32 bits (the reference code's limit).
MAX_K_SIM = 30
PROJECTIONS = ("dense", "sparse")
#: Largest number of float32 entries of one batch's intermediate arrays.
BATCH_ENTRIES = 1 << 24
#: Vectors x repetitions above which a progress bar is shown.
PROGRESS_WORK = 2_000_000

_SIMHASH, _INNER, _FINAL = 0, 1, 2


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _at_least(low: int, *, optional: bool = False) -> Any:
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        if optional and value is None:
            return
        if not _integer(value) or value < low:
            none = " or None" if optional else ""
            raise ConfigError(f"{attribute.name} must be an integer >= {low}{none}, got {value!r}")
    return check


def _k_sim(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not _integer(value) or not 0 <= value <= MAX_K_SIM:
        raise ConfigError(f"k_sim must be an integer in [0, {MAX_K_SIM}] (2**k_sim SimHash partitions "
                          f"per repetition), got {value!r}; the paper uses 2 to 6")


@attrs.frozen
class FDEConfig:
    """FDE parameters (paper notation). Queries and documents must be encoded with equal configs.

    ``k_sim``: SimHash hyperplanes per repetition (``2**k_sim`` partitions), in [0, 30];
    ``d_proj``: inner projection dimension (None: identity, the vectors' own dimension);
    ``R_reps``: independent repetitions; ``fill_empty_partitions``: fill a document's empty
    partitions with its Hamming-nearest vector (never applied to queries); ``final_dim``: final
    projection dimension (None: none); ``projection``: ``"dense"`` (paper) or ``"sparse"``
    (reference code) random projections; ``seed``: seed of every random matrix.
    The defaults are the paper's Pareto-optimal ``(R_reps, k_sim, d_proj) = (20, 5, 16)``.
    """

    k_sim: int = attrs.field(default=5, validator=_k_sim)
    d_proj: int | None = attrs.field(default=16, validator=_at_least(1, optional=True))
    R_reps: int = attrs.field(default=20, validator=_at_least(1))
    fill_empty_partitions: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    final_dim: int | None = attrs.field(default=None, validator=_at_least(1, optional=True))
    projection: str = attrs.field(default="dense", validator=attrs.validators.in_(PROJECTIONS))
    seed: int = attrs.field(default=0, validator=_at_least(0))

    @property
    def partitions(self) -> int:
        """``B = 2**k_sim``, partitions per repetition."""
        return 1 << self.k_sim

    def block_dim(self, dim: int) -> int:
        """Coordinates of one partition block: ``d_proj``, or ``dim`` for the identity."""
        return dim if self.d_proj is None else self.d_proj

    def fde_dim(self, dim: int) -> int:
        """Length of the encodings of ``dim``-dimensional vectors."""
        if self.final_dim is not None:
            return self.final_dim
        return self.R_reps * self.partitions * self.block_dim(dim)


def fde_config(config: FDEConfig | None, params: dict[str, Any]) -> FDEConfig:
    """``config``, or an :class:`FDEConfig` made from keyword ``params`` (ConfigError when bad)."""
    if config is not None and params:
        raise ConfigError("fde: pass an FDEConfig or keyword parameters, not both")
    if config is None:
        return make_config(FDEConfig, params, "fde")
    if not isinstance(config, FDEConfig):
        raise ConfigError(f"fde: config must be an FDEConfig, got {type(config).__name__}")
    return config


# -- random matrices ---------------------------------------------------------------------------

def _rng(config: FDEConfig, purpose: int, rep: int) -> np.random.Generator:
    return np.random.default_rng([config.seed, purpose, rep])


def _signed_projection(rng: np.random.Generator, rows: int, cols: int, kind: str) -> np.ndarray | sp.csr_matrix:
    """``rows x cols`` random projection: dense +-1 / sqrt(cols), or one signed 1 per row (sparse)."""
    if kind == "dense":
        signs = rng.integers(0, 2, size=(rows, cols), dtype=np.int8) * 2 - 1
        return signs.astype(np.float32) / np.float32(math.sqrt(cols))
    columns = rng.integers(0, cols, size=rows)
    signs = (rng.integers(0, 2, size=rows) * 2 - 1).astype(np.float32)
    return sp.csr_matrix((signs, (np.arange(rows), columns)), shape=(rows, cols))


def simhash_matrix(config: FDEConfig, dim: int, rep: int) -> np.ndarray:
    """The ``(dim, k_sim)`` Gaussian hyperplanes of repetition ``rep``."""
    return _rng(config, _SIMHASH, rep).standard_normal((dim, config.k_sim), dtype=np.float32)


def inner_projection(config: FDEConfig, dim: int, rep: int) -> np.ndarray | None:
    """The ``(dim, d_proj)`` matrix of ``psi_rep`` as a dense array (None for the identity)."""
    if config.d_proj is None:
        return None
    matrix = _signed_projection(_rng(config, _INNER, rep), dim, config.d_proj, config.projection)
    return matrix.toarray() if sp.issparse(matrix) else matrix


def final_projection(config: FDEConfig, dim: int, rep: int) -> np.ndarray | sp.csr_matrix | None:
    """Rows of the final projection that act on repetition ``rep``'s ``B * block_dim``
    coordinates (None without a final projection)."""
    if config.final_dim is None:
        return None
    rows = config.partitions * config.block_dim(dim)
    return _signed_projection(_rng(config, _FINAL, rep), rows, config.final_dim, config.projection)


# -- partitions and blocks ---------------------------------------------------------------------

def partition_index(bits: np.ndarray) -> np.ndarray:
    """Partition of each row of ``(n, k_sim)`` sign bits: the Gray-code decoding of the bits,
    first bit most significant (``bits == gray_bits(partition_index(bits))``)."""
    k = bits.shape[1]
    binary = np.bitwise_xor.accumulate(bits.astype(np.int64), axis=1)
    return (binary << np.arange(k - 1, -1, -1, dtype=np.int64)).sum(axis=1, dtype=np.int64)


def gray_bits(partitions: np.ndarray, k_sim: int) -> np.ndarray:
    """``(len(partitions), k_sim)`` 0/1 bits that the points of each partition have."""
    gray = np.asarray(partitions, dtype=np.int64)
    gray = gray ^ (gray >> 1)
    return ((gray[:, None] >> np.arange(k_sim - 1, -1, -1, dtype=np.int64)) & 1).astype(np.uint8)


def fde_blocks(projected: np.ndarray, bits: np.ndarray, offsets: np.ndarray, *, average: bool,
               fill_empty: bool) -> np.ndarray:
    """One repetition's ``(n_items, B * p)`` blocks from each vector's projection ``psi(x)``
    (``(N, p)``) and sign bits (``(N, k_sim)``), items given by ``offsets`` (``n_items + 1``,
    starting at 0). ``average``: centroids (documents), else sums (queries); ``fill_empty``:
    fill empty partitions of non-empty items with the Hamming-nearest vector (first on ties)."""
    n_items, n_points = offsets.size - 1, projected.shape[0]
    k_sim, width = bits.shape[1], projected.shape[1]
    n_parts = 1 << k_sim
    item = np.repeat(np.arange(n_items), np.diff(offsets))
    slot = item * n_parts + (partition_index(bits) if k_sim else 0)
    assign = sp.csr_matrix((np.ones(n_points, np.float32), (slot, np.arange(n_points))),
                           shape=(n_items * n_parts, n_points))
    blocks = np.asarray(assign @ projected, dtype=np.float32)
    if average:
        sizes = np.bincount(slot, minlength=n_items * n_parts)
        blocks /= np.maximum(sizes, 1).astype(np.float32)[:, None]
        if fill_empty and k_sim:
            _fill_empty(blocks, sizes, projected, bits, offsets)
    return blocks.reshape(n_items, n_parts * width)


def _fill_empty(blocks: np.ndarray, sizes: np.ndarray, projected: np.ndarray, bits: np.ndarray,
                offsets: np.ndarray) -> None:
    k_sim = bits.shape[1]
    n_parts = 1 << k_sim
    counts = np.diff(offsets)
    empty = (sizes == 0).reshape(-1, n_parts) & (counts > 0)[:, None]
    items = np.flatnonzero(empty.any(axis=1))
    if not items.size:
        return
    patterns = gray_bits(np.arange(n_parts), k_sim).astype(np.float32)  # (B, k)
    sizes_of = counts[items]
    starts = np.concatenate([[0], np.cumsum(sizes_of)[:-1]])  # of each item within ``rows``
    rows = np.repeat(offsets[items] - starts, sizes_of) + np.arange(sizes_of.sum())
    own = bits[rows].astype(np.float32)
    hamming = own @ (1 - patterns).T + (1 - own) @ patterns.T  # (rows, B), exact small integers
    key = hamming.astype(np.int64) * rows.size + np.arange(rows.size)[:, None]
    nearest = rows[np.minimum.reduceat(key, starts, axis=0) % rows.size]  # (items, B)
    item_idx, part = np.nonzero(empty[items])
    blocks[items[item_idx] * n_parts + part] = projected[nearest[item_idx, part]]


# -- encoding ----------------------------------------------------------------------------------

def _batches(offsets: np.ndarray, max_points: int, max_items: int) -> Iterator[tuple[int, int]]:
    """Consecutive item ranges with at most ``max_points`` vectors and ``max_items`` items (or
    a single item)."""
    n, start = offsets.size - 1, 0
    while start < n:
        end = int(np.searchsorted(offsets, offsets[start] + max_points, side="right")) - 1
        end = min(max(end, start + 1), start + max_items, n)
        yield start, end
        start = end


def _check_items(items: Any, what: str) -> MultiVectorEmbeddings:
    if not isinstance(items, MultiVectorEmbeddings):
        raise InvalidInputError(f"fde: {what} must be MultiVectorEmbeddings (one set of vectors per "
                                f"item), got {type(items).__name__}")
    return items


def _encode(items: MultiVectorEmbeddings, config: FDEConfig, *, document: bool, what: str) -> np.ndarray:
    dim, n_parts = items.dim, config.partitions
    width = config.block_dim(dim)
    rep_dim = n_parts * width
    out = np.zeros((len(items), config.fde_dim(dim)), dtype=np.float32)
    per_point = max(width, config.k_sim, n_parts if document and config.fill_empty_partitions else 1)
    batches = list(_batches(items.offsets, max(1, BATCH_ENTRIES // per_point),
                            max(1, BATCH_ENTRIES // rep_dim)))
    bar = tqdm(total=config.R_reps * len(batches), desc=f"FDE {what}", unit="batch", leave=False,
               disable=items.vectors.shape[0] * config.R_reps < PROGRESS_WORK)
    for rep in range(config.R_reps):
        hyperplanes = simhash_matrix(config, dim, rep)
        inner = inner_projection(config, dim, rep)
        final = final_projection(config, dim, rep)
        for start, end in batches:
            offsets = items.offsets[start:end + 1]
            vectors = items.vectors[offsets[0]:offsets[-1]]
            blocks = fde_blocks(vectors if inner is None else vectors @ inner, vectors @ hyperplanes > 0,
                                offsets - offsets[0], average=document,
                                fill_empty=document and config.fill_empty_partitions)
            if final is None:
                out[start:end, rep * rep_dim:(rep + 1) * rep_dim] = blocks
            else:
                out[start:end] += np.asarray(blocks @ final, dtype=np.float32)
            bar.update()
    bar.close()
    return out


def encode_queries_fde(queries: MultiVectorEmbeddings, config: FDEConfig | None = None,
                       **params: Any) -> np.ndarray:
    """Query FDEs, ``(n_queries, fde_dim)`` float32: per partition the **sum** of the projected
    query vectors; empty partitions stay zero (``fill_empty_partitions`` never applies).

    ``config`` or keyword parameters of :class:`FDEConfig` (``k_sim``, ``d_proj``, ``R_reps``, ...).
    """
    return _encode(_check_items(queries, "queries"), fde_config(config, params), document=False,
                   what="queries")


def encode_documents_fde(documents: MultiVectorEmbeddings, config: FDEConfig | None = None,
                         **params: Any) -> np.ndarray:
    """Document FDEs, ``(n_documents, fde_dim)`` float32: per partition the **average** of the
    projected document vectors; empty partitions filled when ``fill_empty_partitions``.
    A document without vectors encodes to zeros."""
    return _encode(_check_items(documents, "documents"), fde_config(config, params), document=True,
                   what="documents")
