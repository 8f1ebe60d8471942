"""Corpus, queries, graded relevance judgments (qrels) and named splits."""

from __future__ import annotations

import hashlib
import warnings
from functools import cached_property
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.errors import InvalidInputError
from embedlab.ids import as_ids, check_ids
from embedlab.media import Image, InputKind, Item, compose, kinds_of

#: ``{query_id: {doc_id: grade}}``; grade <= 0 means judged non-relevant.
Qrels = Mapping[str, Mapping[str, int]]


def _ids(values: Sequence[str]) -> np.ndarray:
    ids = as_ids(values)
    if ids.ndim != 1:
        raise InvalidInputError(f"ids must be one-dimensional, got shape {ids.shape}")
    return ids


def _positions(ids: np.ndarray, what: str) -> dict[str, int]:
    """Map from id to position; :class:`InvalidInputError` for invalid or repeated ids."""
    check_ids(ids, what)
    values = ids.tolist()
    position = {value: i for i, value in enumerate(values)}
    if len(position) != len(values):
        seen: set[str] = set()
        dupes = list(dict.fromkeys(v for v in values if v in seen or seen.add(v)))  # type: ignore[func-returns-value]
        raise InvalidInputError(f"{what}: {len(dupes)} duplicate id(s), e.g. {dupes[:5]}")
    return position


def _images(values: Sequence[Image | None] | None) -> tuple[Image | None, ...] | None:
    if values is None:
        return None
    images = tuple(values)
    for i, image in enumerate(images):
        if image is not None and not isinstance(image, Image):
            raise InvalidInputError(f"images: item {i} is a {type(image).__name__}, expected "
                                    "embedlab.media.Image or None")
    return images


def _hash_images(digest: Any, images: tuple[Image | None, ...] | None) -> None:
    """Fold the pixel hashes into ``digest``; nothing when there are no images, so text-only
    content hashes (and the cache entries keyed by them) are unchanged."""
    if images is None:
        return
    digest.update(b"images")
    for image in images:
        digest.update((image.content_hash if image is not None else "-").encode())


def _check_images(images: tuple[Image | None, ...] | None, texts: tuple[str, ...], what: str) -> None:
    if images is not None and len(images) != len(texts):
        raise InvalidInputError(f"{what}: {len(images)} images for {len(texts)} items")


@attrs.frozen(eq=False)
class Corpus:
    """Documents: unique ids, texts, optional titles, per-document attribute columns and images.

    ``attributes`` maps a column name to an array with one value per document (``None`` or NaN
    where a document lacks the attribute); filters and filtered indexes read them. ``images``
    (one :class:`~embedlab.media.Image` or None per document) makes a document an image (empty
    text) or an image plus text; see :meth:`inputs`.
    """

    ids: np.ndarray = attrs.field(converter=_ids)
    texts: tuple[str, ...] = attrs.field(converter=tuple)
    titles: tuple[str, ...] | None = attrs.field(default=None, converter=attrs.converters.optional(tuple))
    attributes: Mapping[str, np.ndarray] = attrs.field(factory=dict,
                                                       converter=lambda m: {k: np.asarray(v) for k, v in m.items()})
    _position: dict[str, int] = attrs.field(init=False, repr=False)
    images: tuple[Image | None, ...] | None = attrs.field(default=None, converter=_images, kw_only=True)

    def __attrs_post_init__(self) -> None:
        n = self.ids.size
        if n == 0:
            raise InvalidInputError("corpus: no documents (empty corpus)")
        if len(self.texts) != n or (self.titles is not None and len(self.titles) != n):
            raise InvalidInputError("corpus: ids, texts and titles must have the same length")
        for name, column in self.attributes.items():
            if column.shape[:1] != (n,):
                raise InvalidInputError(f"corpus: attribute {name!r} has {column.shape[:1]} values "
                                        f"for {n} documents")
        _check_images(self.images, self.texts, "corpus")
        object.__setattr__(self, "_position", _positions(self.ids, "corpus"))

    def __len__(self) -> int:
        return int(self.ids.size)

    def documents(self) -> list[str]:
        """Text to encode per document: ``title + " " + text`` where a title exists (as BEIR/MTEB)."""
        if self.titles is None:
            return list(self.texts)
        return [f"{t} {x}" if t else x for t, x in zip(self.titles, self.texts)]

    def inputs(self) -> list[Item]:
        """What an encoder receives per document: :meth:`documents` for a text corpus; with images,
        the image (empty text) or an :class:`~embedlab.media.ImageText` (image and text)."""
        return compose(self.documents(), self.images)

    @property
    def input_kinds(self) -> dict[InputKind, int]:
        """How many documents there are of each input kind."""
        return kinds_of(self.inputs()) if self.images is not None else {InputKind.TEXT: len(self)}

    @property
    def position(self) -> dict[str, int]:
        """Map from document id to row position."""
        return self._position

    @cached_property
    def content_hash(self) -> str:
        """sha256 over ids, titles and texts: the corpus part of embedding cache keys."""
        digest = hashlib.sha256()
        titles = self.titles or ("",) * len(self)
        for doc_id, title, text in zip(self.ids.tolist(), titles, self.texts):
            for part in (doc_id, title, text):
                encoded = part.encode("utf-8", "surrogatepass")
                digest.update(len(encoded).to_bytes(8, "little"))
                digest.update(encoded)
        _hash_images(digest, self.images)
        return digest.hexdigest()


@attrs.frozen(eq=False)
class Queries:
    """Query ids, texts and optional images (a query with an image and an empty text is an image
    query; with both, a composed query such as a reference image plus a modification)."""

    ids: np.ndarray = attrs.field(converter=_ids)
    texts: tuple[str, ...] = attrs.field(converter=tuple)
    images: tuple[Image | None, ...] | None = attrs.field(default=None, converter=_images, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if len(self.texts) != self.ids.size:
            raise InvalidInputError("queries: ids and texts must have the same length")
        _check_images(self.images, self.texts, "queries")
        _positions(self.ids, "queries")

    def __len__(self) -> int:
        return int(self.ids.size)

    def inputs(self) -> list[Item]:
        """What an encoder receives per query (see :meth:`Corpus.inputs`)."""
        return compose(list(self.texts), self.images)

    @property
    def input_kinds(self) -> dict[InputKind, int]:
        """How many queries there are of each input kind."""
        return kinds_of(self.inputs()) if self.images is not None else {InputKind.TEXT: len(self)}

    @cached_property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for part in [*self.ids.tolist(), *self.texts]:
            encoded = part.encode("utf-8", "surrogatepass")
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
        _hash_images(digest, self.images)
        return digest.hexdigest()

    def select(self, ids: Sequence[str]) -> Queries:
        """The queries with these ids, in this order."""
        position = {q: i for i, q in enumerate(self.ids.tolist())}
        rows = [position[q] for q in ids]
        images = None if self.images is None else [self.images[i] for i in rows]
        return Queries(self.ids[rows], [self.texts[i] for i in rows], images=images)


#: ``{query_id: doc_ids}``: documents a query's ranking must not contain (its own node and known
#: neighbours in link prediction, items already seen in recommendation). Rankings of a split with
#: exclusions are searched deeper and the excluded documents removed before evaluation.
Exclusions = Mapping[str, Sequence[str]]


@attrs.frozen(eq=False)
class Split:
    """The queries of one split, their qrels and (optionally) per-query excluded documents."""

    name: str
    queries: Queries
    qrels: Qrels
    exclude: Exclusions | None = None


@attrs.frozen(eq=False)
class Dataset:
    """A corpus, all queries, and qrels per named split (``train``, ``dev``, ``test``...)."""

    name: str
    corpus: Corpus
    queries: Queries
    qrels: Mapping[str, Qrels]
    metadata: Mapping[str, Any] = attrs.field(factory=dict)
    #: Per split, the documents each query's ranking excludes (see :data:`Exclusions`).
    exclude: Mapping[str, Exclusions] = attrs.field(factory=dict)

    @property
    def splits(self) -> list[str]:
        return sorted(self.qrels)

    def split(self, name: str) -> Split:
        """Queries judged in split ``name`` and their qrels.

        Qrels that name unknown queries or documents are dropped with one warning that counts them.
        """
        if name not in self.qrels:
            raise InvalidInputError(f"dataset {self.name!r} has no split {name!r}; "
                                    f"available: {', '.join(self.splits) or 'none'}")
        known_queries = set(self.queries.ids.tolist())
        known_docs = self.corpus.position
        qrels: dict[str, dict[str, int]] = {}
        unknown_q = unknown_d = 0
        for qid, judged in self.qrels[name].items():
            if qid not in known_queries:
                unknown_q += 1
                continue
            kept = {d: int(g) for d, g in judged.items() if d in known_docs}
            unknown_d += len(judged) - len(kept)
            qrels[qid] = kept
        if unknown_q or unknown_d:
            warnings.warn(f"dataset {self.name!r} split {name!r}: ignored qrels naming "
                          f"{unknown_q} unknown query id(s) and {unknown_d} unknown document id(s)",
                          stacklevel=2)
        if not qrels:
            raise InvalidInputError(f"dataset {self.name!r} split {name!r}: no judged queries")
        excluded = self.exclude.get(name)
        exclude = None if excluded is None else {q: excluded[q] for q in qrels if q in excluded}
        return Split(name, self.queries.select(list(qrels)), qrels, exclude)
