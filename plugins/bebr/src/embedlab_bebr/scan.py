"""Compiled (numba) scans of packed BEBR codes.

**SDC** (both sides binarised): with bit planes ``s_t`` and weights ``w_t`` the composite inner
product is ``sum_{t,u} w_t w_u <q_t, d_u>`` and ``<q_t, d_u> = m - 2 H(q_t, d_u)`` for the Hamming
distance ``H``, so a score is ``m (sum_t w_t)^2 - 2 sum_{t,u} w_t w_u H(q_t, d_u)``: ``levels^2``
popcounts of XORed 64-bit words per plane word (6 words per plane at m = 384), the multi-plane
Hamming form of symmetric distance calculation. Exact: the same value as the composite inner
product. (The paper's SDC looks the segment products up in SIMD registers instead; with a hardware
``popcnt`` the XOR-popcount form does the same work in fewer instructions.)

**ADC** (float queries): one 256-entry table per code byte and query (see :mod:`codes`), summed
over the code's bytes.

Both kernels run queries in parallel (``prange``) over documents in cache-sized blocks; the
thread count is numba's (set it with :func:`embedlab.threads.numba_threads`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange, types
from numba.extending import intrinsic

from embedlab_bebr.codes import level_weights, tables

#: Documents scored per block (their words stay in cache while every query of the block scans them).
BLOCK = 2048
#: Float entries of the per-query ADC tables built at once (bounds the table memory to 32 MiB).
TABLE_BUDGET = 1 << 23
@intrinsic
def _popcount(typingctx: object, word: types.Type) -> tuple:
    """Bits set in a 64-bit word: LLVM's ``ctpop``, one ``popcnt`` instruction on x86-64."""
    def codegen(context: object, builder: object, signature: object, args: tuple) -> object:
        return builder.ctpop(args[0])
    return types.uint64(types.uint64), codegen


@njit(parallel=True, cache=True)
def _sdc(queries: np.ndarray, docs: np.ndarray, levels: int, pair_weights: np.ndarray, constant: float,
         out: np.ndarray) -> None:
    """``queries`` ``(nq, levels * words)`` and ``docs`` ``(n, levels * words)`` uint64 bit planes;
    ``pair_weights[t, u] = 2 w_t w_u``; ``out`` ``(nq, n)`` float32."""
    n_queries, width = queries.shape
    words = width // levels
    n_docs = docs.shape[0]
    for start in range(0, n_docs, BLOCK):
        stop = min(start + BLOCK, n_docs)
        for q in prange(n_queries):
            query = queries[q]
            row = out[q]
            for i in range(start, stop):
                doc = docs[i]
                total = 0.0
                for t in range(levels):
                    for u in range(levels):
                        distance = np.uint64(0)
                        for w in range(words):
                            distance += _popcount(query[t * words + w] ^ doc[u * words + w])
                        total += pair_weights[t, u] * np.float64(distance)
                row[i] = np.float32(constant - total)


@njit(parallel=True, cache=True)
def _adc(tables: np.ndarray, codes: np.ndarray, out: np.ndarray) -> None:
    """``tables`` ``(nq, bytes, 256)`` float32, ``codes`` ``(n, bytes)`` uint8, ``out`` ``(nq, n)``."""
    n_queries, width = tables.shape[0], tables.shape[1]
    n_docs = codes.shape[0]
    for start in range(0, n_docs, BLOCK):
        stop = min(start + BLOCK, n_docs)
        for q in prange(n_queries):
            for i in range(start, stop):
                total = np.float32(0.0)
                for j in range(width):
                    total += tables[q, j, codes[i, j]]
                out[q, i] = total


def planes(codes: np.ndarray) -> np.ndarray:
    """``(n, bytes)`` packed codes as ``(n, bytes / 8)`` uint64 words (a view of C-contiguous,
    8-byte aligned codes; a copy otherwise). The bit planes of one code stay in order."""
    array = np.ascontiguousarray(codes)
    if array.ctypes.data % 8:
        array = array.copy()
    return array.view(np.uint64)


def sdc_scores(query_codes: np.ndarray, codes: np.ndarray, levels: int, code_dim: int) -> np.ndarray:
    """``(n_queries, n_codes)`` composite inner products of two sets of packed codes (popcounts;
    ``code_dim`` a multiple of 64)."""
    out = np.empty((len(query_codes), len(codes)), np.float32)
    if out.size:
        weights = level_weights(levels).astype(np.float64)
        constant = float(code_dim) * float(weights.sum()) ** 2
        _sdc(planes(query_codes), planes(codes), levels, 2.0 * np.outer(weights, weights), constant, out)
    return out


def adc_scores(z: np.ndarray, codes: np.ndarray, levels: int) -> np.ndarray:
    """``(n_queries, n_codes)`` inner products ``z . composite(code)`` of code-space query vectors
    ``z`` by per-byte table look-ups (queries in chunks that bound the tables' memory)."""
    out = np.empty((len(z), len(codes)), np.float32)
    if not out.size:
        return out
    codes = np.ascontiguousarray(codes)
    chunk = max(1, TABLE_BUDGET // (codes.shape[1] * 256))
    for start in range(0, len(z), chunk):
        table = np.ascontiguousarray(tables(z[start:start + chunk], levels).transpose(2, 0, 1))
        _adc(table, codes, out[start:start + chunk])
    return out
