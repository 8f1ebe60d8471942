"""Save a :class:`~embedlab.dataset.Dataset` (texts, images, attributes, qrels) as a state directory
and load it back: ``manifest.json`` (qrels, exclusions, metadata, checksums) plus ``.npy`` arrays
(ids, texts and titles as UTF-8 bytes + offsets, numeric attribute columns, packed image pixels). No pickle; written
atomically; a truncated or edited file is reported by name (:mod:`embedlab.persistence`).

``[dataset] path = "<folder>"`` loads such a folder (a ``manifest.json`` marks it) as well as a
BEIR folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import StateError
from embedlab.media import pack_images, unpack_images
from embedlab.persistence import load_state, save_state

KIND = "dataset"


def _pack_texts(prefix: str, values: Any) -> dict[str, np.ndarray]:
    """Texts as one UTF-8 byte array plus ``n + 1`` offsets (no fixed-width unicode arrays, whose
    every element is as wide as the longest text, and no StringDType, which needs pickle)."""
    encoded = [str(v).encode("utf-8", "surrogatepass") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return {f"{prefix}.utf8": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            f"{prefix}.offsets": offsets}


def _unpack_texts(arrays: dict[str, np.ndarray], prefix: str) -> list[str]:
    raw, offsets = arrays[f"{prefix}.utf8"].tobytes(), arrays[f"{prefix}.offsets"]
    if offsets.ndim != 1 or offsets[0] != 0 or offsets[-1] != len(raw) or (np.diff(offsets) < 0).any():
        raise StateError(f"saved dataset: text offsets of {prefix!r} do not match its bytes")
    return [raw[a:b].decode("utf-8", "surrogatepass") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]


def save_dataset(dataset: Dataset, path: str | Path) -> Path:
    """Write ``dataset`` to the directory ``path`` (replaced atomically)."""
    corpus, queries = dataset.corpus, dataset.queries
    arrays: dict[str, np.ndarray] = {**_pack_texts("corpus_ids", corpus.ids.tolist()),
                                     **_pack_texts("corpus_texts", corpus.texts),
                                     **_pack_texts("query_ids", queries.ids.tolist()),
                                     **_pack_texts("query_texts", queries.texts)}
    if corpus.titles is not None:
        arrays.update(_pack_texts("corpus_titles", corpus.titles))
    json_columns: dict[str, list[Any]] = {}
    for name, column in corpus.attributes.items():
        if column.dtype.kind in "OT":  # objects and variable-width strings would need pickle
            json_columns[name] = column.tolist()
        else:
            arrays[f"attribute.{name}"] = column
    for prefix, images in (("corpus", corpus.images), ("query", queries.images)):
        if images is not None:
            arrays.update({f"{prefix}_{k}": v for k, v in pack_images(images).items()})
    meta = {"qrels": {s: {q: dict(d) for q, d in judged.items()} for s, judged in dataset.qrels.items()},
            "exclude": {s: {q: list(d) for q, d in ex.items()} for s, ex in dataset.exclude.items()},
            "metadata": dict(dataset.metadata), "json_attributes": json_columns}
    identity = {"kind": KIND, "name": dataset.name, "config": {}, "distribution": "embedlab",
                "version": "dataset"}
    return save_state(path, None, arrays, meta=meta, identity=identity)


def _images(arrays: dict[str, np.ndarray], prefix: str) -> list[Any] | None:
    if f"{prefix}_image_pixels" not in arrays:
        return None
    return unpack_images(arrays[f"{prefix}_image_pixels"], arrays[f"{prefix}_image_shapes"])


def load_saved_dataset(path: str | Path) -> Dataset:
    """Load a directory written by :func:`save_dataset`, verifying every file's checksum."""
    state = load_state(path, kind=KIND)
    arrays, meta = state.arrays, state.meta
    try:
        attributes: dict[str, Any] = {name[len("attribute."):]: column for name, column in arrays.items()
                                      if name.startswith("attribute.")}
        attributes.update({name: np.array(values, dtype=object)
                           for name, values in meta["json_attributes"].items()})
        titles = _unpack_texts(arrays, "corpus_titles") if "corpus_titles.utf8" in arrays else None
        corpus = Corpus(_unpack_texts(arrays, "corpus_ids"), _unpack_texts(arrays, "corpus_texts"), titles,
                        attributes, images=_images(arrays, "corpus"))
        queries = Queries(_unpack_texts(arrays, "query_ids"), _unpack_texts(arrays, "query_texts"),
                          images=_images(arrays, "query"))
        return Dataset(state.manifest["name"], corpus, queries, meta["qrels"], meta["metadata"],
                       meta["exclude"])
    except KeyError as error:
        raise StateError(f"{path}: saved dataset lacks {error}") from None


def is_saved_dataset(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by :func:`save_dataset`."""
    return (Path(path) / "manifest.json").is_file()
