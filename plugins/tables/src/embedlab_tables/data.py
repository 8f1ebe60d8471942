"""CTR data: categorical ids per field, dense features, 0/1 labels; seeded splits and frequencies.

Categorical ids are *per field* (``0 <= id < vocab_sizes[f]``); a table sees global ids (the
field's offset added, :class:`embedlab_tables.schema.TableSchema`). Everything is validated on
construction, so a bad id or label fails here, naming the field and the row, instead of as an
index error deep inside torch.
"""

from __future__ import annotations

from typing import Sequence

import attrs
import numpy as np

from embedlab.errors import InvalidInputError


def _names(value: Sequence[str] | None, count: int, prefix: str) -> tuple[str, ...]:
    if value is None:
        return tuple(f"{prefix}{i + 1}" for i in range(count))
    names = tuple(str(v) for v in value)
    if len(names) != count:
        raise InvalidInputError(f"{len(names)} {prefix!r} field names for {count} columns")
    if len(set(names)) != len(names):
        raise InvalidInputError(f"duplicate field names: {sorted(n for n in set(names) if names.count(n) > 1)}")
    return names


@attrs.frozen(eq=False)
class CTRData:
    """Rows of a click-through-rate data set.

    ``categorical``: ``(n, F)`` int64 ids, one column per field; ``dense``: ``(n, D)`` float32
    (``D`` may be 0); ``labels``: ``(n,)`` float32 in {0, 1}; ``vocab_sizes``: ids of field ``f``
    are ``< vocab_sizes[f]``.
    """

    categorical: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.int64))
    dense: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.float32))
    labels: np.ndarray = attrs.field(converter=lambda a: np.ascontiguousarray(a, dtype=np.float32))
    vocab_sizes: tuple[int, ...] = attrs.field(converter=lambda v: tuple(int(x) for x in v))
    field_names: tuple[str, ...] | None = None
    dense_names: tuple[str, ...] | None = None

    def __attrs_post_init__(self) -> None:
        cat, dense, labels = self.categorical, self.dense, self.labels
        if cat.ndim != 2:
            raise InvalidInputError(f"categorical ids must be (rows, fields), got shape {cat.shape}")
        n, fields = cat.shape
        if n == 0:
            raise InvalidInputError("CTR data has no rows")
        if fields == 0:
            raise InvalidInputError("CTR data has no categorical field")
        if dense.ndim != 2 or dense.shape[0] != n:
            raise InvalidInputError(f"dense features must be ({n}, D), got shape {dense.shape}")
        if labels.shape != (n,):
            raise InvalidInputError(f"labels must be ({n},), got shape {labels.shape}")
        if len(self.vocab_sizes) != fields:
            raise InvalidInputError(f"{len(self.vocab_sizes)} vocabulary sizes for {fields} fields")
        if any(v < 1 for v in self.vocab_sizes):
            raise InvalidInputError(f"every vocabulary size must be >= 1, got {list(self.vocab_sizes)}")
        object.__setattr__(self, "field_names", _names(self.field_names, fields, "C"))
        object.__setattr__(self, "dense_names", _names(self.dense_names, dense.shape[1], "I"))
        low = cat.min(axis=0)
        high = cat.max(axis=0)
        for f in range(fields):
            if low[f] < 0:
                row = int(np.argmax(cat[:, f] < 0))
                raise InvalidInputError(f"negative id {int(cat[row, f])} in field {self.field_names[f]!r} "
                                        f"(row {row})")
            if high[f] >= self.vocab_sizes[f]:
                row = int(np.argmax(cat[:, f] >= self.vocab_sizes[f]))
                raise InvalidInputError(f"id {int(cat[row, f])} in field {self.field_names[f]!r} (row {row}) "
                                        f"is outside its vocabulary of {self.vocab_sizes[f]}")
        if not np.all(np.isfinite(dense)):
            row = int(np.argmax(~np.all(np.isfinite(dense), axis=1)))
            raise InvalidInputError(f"dense features contain NaN or infinity (row {row})")
        bad = (labels != 0) & (labels != 1)
        if bad.any():
            row = int(np.argmax(bad))
            raise InvalidInputError(f"labels must be 0 or 1, got {labels[row]!r} (row {row})")

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def n_fields(self) -> int:
        return int(self.categorical.shape[1])

    @property
    def n_dense(self) -> int:
        return int(self.dense.shape[1])

    def take(self, rows: np.ndarray) -> CTRData:
        """The given rows (same vocabularies)."""
        return attrs.evolve(self, categorical=self.categorical[rows], dense=self.dense[rows], labels=self.labels[rows])

    def field(self, name: str) -> int:
        """Position of the field called ``name`` (unknown names list the fields)."""
        assert self.field_names is not None
        if name not in self.field_names:
            raise InvalidInputError(f"unknown field {name!r}; fields: {', '.join(self.field_names)}")
        return self.field_names.index(name)

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple[CTRData, ...]:
        """Seeded random split into ``len(fractions)`` parts (e.g. train, valid, test)."""
        parts = np.asarray(fractions, dtype=np.float64)
        if parts.ndim != 1 or len(parts) < 2 or np.any(parts <= 0) or abs(parts.sum() - 1) > 1e-9:
            raise InvalidInputError(f"split fractions must be >= 2 positive numbers summing to 1, "
                                    f"got {list(fractions)}")
        order = np.random.default_rng(seed).permutation(len(self))
        bounds = np.round(np.cumsum(parts)[:-1] * len(self)).astype(int)
        chunks = np.split(order, bounds)
        if any(len(c) == 0 for c in chunks):
            raise InvalidInputError(f"{len(self)} rows are too few to split into {list(fractions)}")
        return tuple(self.take(np.sort(c)) for c in chunks)

    def counts(self) -> list[np.ndarray]:
        """Occurrences of every id, per field (the frequencies frequency-aware methods use)."""
        return [np.bincount(self.categorical[:, f], minlength=v).astype(np.int64)
                for f, v in enumerate(self.vocab_sizes)]
