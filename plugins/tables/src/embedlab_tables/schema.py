"""What an embedding table is built for: fields, vocabularies, dimension, frequencies, budget.

Memory is counted in bytes of what a trained table must store to serve lookups (float32 rows,
integer codes, index maps, sparse-matrix indices...). The budget of a compression ratio ``r`` is
the uncompressed table's bytes (``n_features * dim * 4``) divided by ``r``.
"""

from __future__ import annotations

import math
from typing import Sequence

import attrs
import numpy as np

from embedlab.errors import InvalidInputError

#: Bytes of one float32 value.
FLOAT = 4


class BudgetError(InvalidInputError):
    """A method cannot fit the requested memory budget (the message says what it can reach)."""


@attrs.frozen(eq=False)
class TableSchema:
    """Fields of a CTR model's embedding layer: vocabulary per field, dimension, training counts."""

    vocab_sizes: tuple[int, ...] = attrs.field(converter=lambda v: tuple(int(x) for x in v))
    dim: int = attrs.field(converter=int)
    counts: np.ndarray | None = None
    field_names: tuple[str, ...] | None = None

    def __attrs_post_init__(self) -> None:
        if not self.vocab_sizes or any(v < 1 for v in self.vocab_sizes):
            raise InvalidInputError(f"vocabulary sizes must be >= 1 and at least one field, "
                                    f"got {list(self.vocab_sizes)}")
        if self.dim < 1:
            raise InvalidInputError(f"embedding dimension must be >= 1, got {self.dim}")
        if self.counts is None:
            object.__setattr__(self, "counts", np.ones(self.n_features, dtype=np.int64))
        counts = np.asarray(self.counts, dtype=np.int64)
        if counts.shape != (self.n_features,) or np.any(counts < 0):
            raise InvalidInputError(f"counts must be {self.n_features} non-negative integers (one per feature)")
        object.__setattr__(self, "counts", counts)
        if self.field_names is None:
            object.__setattr__(self, "field_names", tuple(f"C{i + 1}" for i in range(self.n_fields)))

    @classmethod
    def from_counts(cls, per_field_counts: Sequence[np.ndarray], dim: int,
                    field_names: Sequence[str] | None = None) -> TableSchema:
        """Schema of fields whose id frequencies are ``per_field_counts`` (``CTRData.counts()``)."""
        return cls(tuple(len(c) for c in per_field_counts), dim, np.concatenate(per_field_counts),
                   tuple(field_names) if field_names is not None else None)

    @property
    def n_fields(self) -> int:
        return len(self.vocab_sizes)

    @property
    def n_features(self) -> int:
        return int(sum(self.vocab_sizes))

    @property
    def offsets(self) -> np.ndarray:
        """Global id of every field's id 0 (``n_fields + 1`` entries, the last is ``n_features``)."""
        return np.concatenate([[0], np.cumsum(self.vocab_sizes)]).astype(np.int64)

    @property
    def full_bytes(self) -> int:
        """Bytes of the uncompressed float32 table."""
        return self.n_features * self.dim * FLOAT

    def field_counts(self, field: int) -> np.ndarray:
        start, stop = self.offsets[field], self.offsets[field + 1]
        assert self.counts is not None
        return self.counts[start:stop]

    def field_of(self) -> np.ndarray:
        """Field of every global feature id."""
        return np.repeat(np.arange(self.n_fields), self.vocab_sizes)

    def budget(self, ratio: float) -> int:
        """Bytes allowed at compression ``ratio`` (>= 1); below one float32 row is an error."""
        if not (isinstance(ratio, (int, float)) and math.isfinite(ratio) and ratio >= 1):
            raise BudgetError(f"compression ratio must be a finite number >= 1, got {ratio!r}")
        allowed = int(math.floor(self.full_bytes / ratio))
        if allowed < self.dim * FLOAT:
            raise BudgetError(f"ratio {ratio:g} leaves {allowed} bytes, less than one {self.dim}-dim float32 row "
                              f"({self.dim * FLOAT} bytes); the largest ratio for {self.n_features} features is "
                              f"{self.n_features:g}")
        return allowed

    def frequency_order(self, field: int | None = None) -> np.ndarray:
        """Ids (global, or local to ``field``) from most to least frequent (ties: lower id first)."""
        counts = self.counts if field is None else self.field_counts(field)
        assert counts is not None
        return np.lexsort((np.arange(len(counts)), -counts))
