"""Reader for Criteo's display-advertising format.

Two layouts are accepted:

* Kaggle / Criteo-TB: tab-separated, no header, ``label I1..I13 C1..C26`` (blank = missing);
* DeepCTR's sample (``criteo_sample.txt``): comma-separated with a header row naming the columns
  ``label,I1,...,I13,C1,...,C26``.

Numeric features become ``log(1 + max(x, 0))`` (DLRM's transform; missing = 0). Categorical values
(hex hashes) get per-field ids by frequency: id 0 is the shared bucket of values seen fewer than
``min_count`` times (and of values a given vocabulary does not know), ids 1.. the other values,
most frequent first (ties by value). Blank is a value like any other ("missing" carries signal).
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from pathlib import Path
from typing import Sequence

import attrs
import numpy as np

from embedlab.errors import InvalidInputError
from embedlab_tables.data import CTRData

N_DENSE = 13
N_CATEGORICAL = 26
DENSE_NAMES = tuple(f"I{i}" for i in range(1, N_DENSE + 1))
CATEGORICAL_NAMES = tuple(f"C{i}" for i in range(1, N_CATEGORICAL + 1))
COLUMNS = ("label", *DENSE_NAMES, *CATEGORICAL_NAMES)


@attrs.frozen
class CriteoVocabulary:
    """Per-field value -> id maps (id 0: rare or unseen values)."""

    ids: tuple[dict[str, int], ...]
    min_count: int

    @classmethod
    def fit(cls, values: Sequence[Sequence[str]], min_count: int = 1) -> CriteoVocabulary:
        """Vocabulary of ``values`` (one sequence per field)."""
        if not isinstance(min_count, int) or min_count < 1:
            raise InvalidInputError(f"min_count must be an integer >= 1, got {min_count!r}")
        maps = []
        for column in values:
            counts = Counter(column)
            kept = sorted((v for v, c in counts.items() if c >= min_count), key=lambda v: (-counts[v], v))
            maps.append({v: i + 1 for i, v in enumerate(kept)})
        return cls(tuple(maps), min_count)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(m) + 1 for m in self.ids)

    def transform(self, values: Sequence[Sequence[str]]) -> np.ndarray:
        if len(values) != len(self.ids):
            raise InvalidInputError(f"{len(values)} categorical fields for a vocabulary of {len(self.ids)}")
        return np.stack([np.fromiter((m.get(v, 0) for v in column), dtype=np.int64, count=len(column))
                         for m, column in zip(self.ids, values)], axis=1)


def _layout(first_line: str) -> tuple[str, bool]:
    """(delimiter, has_header) from the first line."""
    delimiter = "\t" if "\t" in first_line else ","
    head = first_line.split(delimiter)[0].strip().lower()
    return delimiter, head == "label"


def _dense_value(text: str, line: int, column: str) -> float:
    text = text.strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InvalidInputError(f"line {line}: numeric feature {column} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise InvalidInputError(f"line {line}: numeric feature {column} is {text!r}")
    return math.log1p(max(value, 0.0))


def _label(text: str, line: int) -> float:
    text = text.strip()
    if text in ("0", "1", "0.0", "1.0"):
        return float(text[0])
    raise InvalidInputError(f"line {line}: label must be 0 or 1, got {text!r}")


def read_criteo(path: str | Path, *, min_count: int = 1, vocabulary: CriteoVocabulary | None = None,
                max_rows: int | None = None) -> tuple[CTRData, CriteoVocabulary]:
    """Rows of a Criteo file and the vocabulary that numbered its categorical values.

    ``vocabulary``: reuse one fitted on other rows (unknown values get id 0); otherwise one is fitted
    on these rows with ``min_count``. Errors name the line of a malformed row.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"Criteo file {str(path)!r} does not exist")
    line = 0
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as handle:
            first = handle.readline()
            if not first.strip():
                raise InvalidInputError(f"Criteo file {str(path)!r} is empty")
            delimiter, has_header = _layout(first)
            header = next(csv.reader(io.StringIO(first), delimiter=delimiter)) if has_header else None
            if header is not None:
                missing = [c for c in COLUMNS if c not in header]
                if missing:
                    raise InvalidInputError(f"{path.name}: header lacks column(s) {', '.join(missing)}")
                order = [header.index(c) for c in COLUMNS]
                rows_iter = csv.reader(handle, delimiter=delimiter)
                start = 2
            else:
                order = list(range(len(COLUMNS)))
                rows_iter = csv.reader(_chain(first, handle), delimiter=delimiter)
                start = 1
            width = len(header) if header is not None else len(COLUMNS)
            labels: list[float] = []
            dense: list[list[float]] = []
            categorical: list[list[str]] = [[] for _ in range(N_CATEGORICAL)]
            for line, row in enumerate(rows_iter, start=start):
                if max_rows is not None and len(labels) >= max_rows:
                    break
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    raise InvalidInputError(f"{path.name} line {line}: {len(row)} columns, expected {width} "
                                            "(label, 13 numeric, 26 categorical)")
                values = [row[i] for i in order]
                labels.append(_label(values[0], line))
                dense.append([_dense_value(v, line, c) for v, c in zip(values[1:1 + N_DENSE], DENSE_NAMES)])
                for f, v in enumerate(values[1 + N_DENSE:]):
                    categorical[f].append(v.strip())
    except UnicodeDecodeError as error:
        raise InvalidInputError(f"{path.name}: not UTF-8 text after line {line} ({error.reason})") from None
    except csv.Error as error:  # a field over csv's size limit
        raise InvalidInputError(f"{path.name} line {line + 1}: {error}") from None
    if not labels:
        raise InvalidInputError(f"Criteo file {str(path)!r} has a header but no rows")
    vocab = vocabulary if vocabulary is not None else CriteoVocabulary.fit(categorical, min_count)
    data = CTRData(vocab.transform(categorical), np.asarray(dense, dtype=np.float32),
                   np.asarray(labels, dtype=np.float32), vocab.sizes, CATEGORICAL_NAMES, DENSE_NAMES)
    return data, vocab


def _chain(first: str, rest: io.TextIOBase):
    yield first
    yield from rest
