"""The arrays of a built Seismic index, their invariants and their size."""

from __future__ import annotations

from typing import Mapping

import attrs
import numpy as np
import scipy.sparse as sp

from embedlab.errors import StateError
from embedlab.state_checks import check_offsets, check_range

#: A posting is ``start << LENGTH_BITS | length``: where its document's entries begin in the
#: forward index and how many there are (as the official implementation packs them).
LENGTH_BITS = 24
LENGTH_MASK = (1 << LENGTH_BITS) - 1
#: Most forward-index entries a packed posting can address.
MAX_ENTRIES = 1 << (63 - LENGTH_BITS)
#: Most blocks in one posting list (block ids within a list are uint16).
MAX_BLOCKS = 65535

#: Every array of the index and its dtype.
DTYPES: dict[str, type] = {
    # forward index (exact scoring of visited documents): document d's entries are
    # doc_ptr[d]:doc_ptr[d+1]; entry x is doc_entries[2x] (term id) and doc_entries[2x+1] (the bits
    # of its float32 value), interleaved so that a short document fits in one cache line
    "doc_ptr": np.int64, "doc_entries": np.int32,
    # pruned posting lists (packed, see LENGTH_BITS), cut into blocks: list t owns blocks
    # list_blocks[t]:list_blocks[t+1]
    "list_blocks": np.int64, "block_ptr": np.int64, "postings": np.int64,
    # per block dequantisation: value = code * block_step + block_min
    "block_min": np.float32, "block_step": np.float32,
    # summaries of list t, transposed: its terms are summary_terms[list_summary_ptr[t]:...], its
    # (block, code) entries [list_entry_ptr[t]:...]; summary_ptr: a term's first entry within the list
    "list_summary_ptr": np.int64, "summary_terms": np.int32, "list_entry_ptr": np.int64,
    "summary_ptr": np.int32, "summary_blocks": np.uint16, "summary_codes": np.uint8,
}


def _bad(name: str, why: str) -> StateError:
    return StateError(f"seismic index: array {name!r} {why} (corrupted or edited state)")


def _check_offsets(name: str, ptr: np.ndarray, length: int, end: int, *, strict: bool = False) -> None:
    check_offsets(ptr, length - 1, end, f"seismic index: array {name!r}", strict=strict)


def _check_range(name: str, values: np.ndarray, stop: int) -> None:
    check_range(values, stop, f"seismic index: array {name!r}")


@attrs.frozen(eq=False)
class SeismicArrays:
    """Forward index, blocked posting lists and quantised summaries (flat numpy arrays)."""

    dim: int
    doc_ptr: np.ndarray
    doc_entries: np.ndarray
    list_blocks: np.ndarray
    block_ptr: np.ndarray
    postings: np.ndarray
    block_min: np.ndarray
    block_step: np.ndarray
    list_summary_ptr: np.ndarray
    summary_terms: np.ndarray
    list_entry_ptr: np.ndarray
    summary_ptr: np.ndarray
    summary_blocks: np.ndarray
    summary_codes: np.ndarray

    @classmethod
    def from_arrays(cls, dim: int, arrays: Mapping[str, np.ndarray]) -> SeismicArrays:
        """Check names, dtypes and every structural invariant (so the kernels never read out of
        bounds); raises :class:`StateError` naming the first bad array."""
        missing = sorted(set(DTYPES) - set(arrays))
        if missing:
            raise StateError(f"seismic index: arrays {missing} are missing from the saved state")
        checked = {}
        for name, dtype in DTYPES.items():
            array = np.asarray(arrays[name])
            if array.dtype != dtype or array.ndim != 1:
                raise _bad(name, f"has dtype {array.dtype} and {array.ndim} dimension(s), expected "
                                 f"1-d {np.dtype(dtype)}")
            checked[name] = np.ascontiguousarray(array)
        state = cls(int(dim), **checked)
        state._check()
        return state

    def _check(self) -> None:
        n_docs, dim = self.n_docs, self.dim
        n_blocks, n_terms = self.block_min.size, self.summary_terms.size
        if self.doc_entries.size % 2:
            raise _bad("doc_entries", "has an odd length (it interleaves term ids and values)")
        _check_offsets("doc_ptr", self.doc_ptr, n_docs + 1, self.doc_terms.size)
        if not np.isfinite(self.doc_vals).all():
            raise _bad("doc_entries", "holds NaN/inf values")
        if not (np.isfinite(self.block_min).all() and np.isfinite(self.block_step).all()):
            raise _bad("block_min", "or block_step holds NaN/inf values")
        _check_range("doc_entries", self.doc_terms, dim)
        _check_offsets("list_blocks", self.list_blocks, dim + 1, n_blocks)
        if self.block_step.size != n_blocks:
            raise _bad("block_step", f"has {self.block_step.size} entries for {n_blocks} blocks")
        _check_offsets("block_ptr", self.block_ptr, n_blocks + 1, self.postings.size, strict=True)
        starts, lengths = self.postings >> LENGTH_BITS, self.postings & LENGTH_MASK
        doc = np.searchsorted(self.doc_ptr, starts, side="right") - 1
        if self.postings.size and ((self.postings < 0).any() or (starts >= self.doc_terms.size).any()
                                   or (self.doc_ptr[doc] != starts).any()
                                   or (self.doc_ptr[doc + 1] - starts != lengths).any()):
            raise _bad("postings", "does not point at whole documents of the forward index")
        _check_offsets("list_summary_ptr", self.list_summary_ptr, dim + 1, n_terms)
        _check_range("summary_terms", self.summary_terms, dim)
        owner = np.repeat(np.arange(dim), np.diff(self.list_summary_ptr))
        if ((np.diff(self.summary_terms) <= 0) & (np.diff(owner) == 0)).any():
            raise _bad("summary_terms", "is not strictly increasing within a posting list")
        n_entries = self.summary_blocks.size
        _check_offsets("list_entry_ptr", self.list_entry_ptr, dim + 1, n_entries)
        if self.summary_codes.size != n_entries or self.summary_ptr.size != n_terms:
            raise _bad("summary_ptr", "or summary_codes does not match the summary terms / entries")
        # a term's entries end where the next term of its list begins, or at the list's end
        last = np.ones(n_terms, dtype=bool)
        last[:-1] = owner[1:] != owner[:-1]
        ends = np.where(last, np.diff(self.list_entry_ptr)[owner], np.roll(self.summary_ptr, -1))
        first = np.ones(n_terms, dtype=bool)
        first[1:] = owner[1:] != owner[:-1]
        if ((first & (self.summary_ptr != 0)) | (self.summary_ptr >= ends)).any():
            raise _bad("summary_ptr", "is not a valid offset array within each posting list")
        entry_list = np.repeat(np.arange(dim), np.diff(self.list_entry_ptr))
        if (self.summary_blocks >= np.diff(self.list_blocks)[entry_list]).any():
            raise _bad("summary_blocks", "names a block outside its posting list")

    @classmethod
    def interleave(cls, terms: np.ndarray, values: np.ndarray) -> np.ndarray:
        """The ``doc_entries`` layout of CSR ``indices`` and float32 ``data``."""
        entries = np.empty(2 * terms.size, dtype=np.int32)
        entries[0::2] = terms
        entries[1::2] = np.ascontiguousarray(values, dtype=np.float32).view(np.int32)
        return entries

    @property
    def doc_terms(self) -> np.ndarray:
        return self.doc_entries[0::2]

    @property
    def doc_vals(self) -> np.ndarray:
        return self.doc_entries[1::2].view(np.float32)

    @property
    def n_docs(self) -> int:
        return int(self.doc_ptr.size - 1)

    @property
    def max_blocks(self) -> int:
        """Most blocks in one posting list (the size of the search's score buffer)."""
        return int(np.diff(self.list_blocks).max(initial=0))

    @property
    def nbytes(self) -> int:
        return sum(int(getattr(self, name).nbytes) for name in DTYPES)

    def arrays(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in DTYPES}

    def documents(self) -> sp.csr_matrix:
        """The forward index as a CSR matrix."""
        return sp.csr_matrix((self.doc_vals.copy(), self.doc_terms.copy(), self.doc_ptr),
                             shape=(self.n_docs, self.dim))
