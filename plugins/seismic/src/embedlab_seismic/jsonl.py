"""Read the official Seismic JSONL format (``{"id", "content", "vector": {token: weight}}``)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np
import scipy.sparse as sp

from embedlab.datasets.beir import read_jsonl as json_records
from embedlab.errors import InvalidInputError
from embedlab.ids import check_id


def read_jsonl(path: str | Path, vocabulary: Mapping[str, int] | None = None
               ) -> tuple[list[str], sp.csr_matrix, dict[str, int]]:
    """``(ids, vectors, vocabulary)`` from a Seismic JSONL file.

    Without ``vocabulary``, one is made of the file's tokens in sorted order. With one (for
    example the documents' vocabulary when reading queries), tokens outside it are dropped:
    no document has them, so they cannot change any score.
    """
    records = []
    for line_number, record in json_records(Path(path)):
        vector = record.get("vector")
        if "id" not in record or not isinstance(vector, dict) or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) for w in vector.values()):
            raise InvalidInputError(f"{path}:{line_number}: not a Seismic record with 'id' and 'vector' "
                                    "(an object of token: weight numbers)")
        records.append((check_id(str(record["id"]), f"{path}:{line_number}"), vector))
    if vocabulary is None:
        vocabulary = {token: i for i, token in enumerate(sorted({t for _, v in records for t in v}))}
    vocabulary = dict(vocabulary)
    rows, cols, vals = [], [], []
    for row, (_, vector) in enumerate(records):
        for token, weight in vector.items():
            if token in vocabulary:
                rows.append(row)
                cols.append(vocabulary[token])
                vals.append(weight)
    matrix = sp.csr_matrix((np.asarray(vals, dtype=np.float32), (np.asarray(rows, dtype=np.int64),
                           np.asarray(cols, dtype=np.int64))), shape=(len(records), len(vocabulary)))
    matrix.sort_indices()
    return [i for i, _ in records], matrix, vocabulary
