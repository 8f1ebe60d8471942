"""``aspects``: one embedding space per aspect of a document, and aspect-conditioned search.

Ostendorff et al. (JCDL 2022) represent a document not by one generic vector but by one vector per
aspect (a paper's task, method, dataset), each from an encoder trained on that aspect's
similarity only, and answer "papers similar to this one *in its method*" by nearest neighbours in
the method space. Here each aspect is an ordinary first stage (:class:`embedlab.EmbeddingRetriever`:
an encoder and an index of its own, the embedding cache), so a document has one named vector per
aspect and any encoder, trainable or not, can serve an aspect.

**Which aspect a query asks about.** A query's text starts with ``"<aspect>: "`` (``"method:
Attention is all you need ..."``); the prefix is removed before encoding. A query without a known
prefix uses ``default_aspect`` (an error when there is none). In Python,
``search(queries, k, aspect="method")`` asks every query about one aspect.

**Training.** With a training split (``[dataset] train_split``), each aspect's encoder is trained
on that aspect's training queries only (their prefixes removed): one specialised space per aspect
(the paper's contribution). ``shared = true`` instead builds *one* encoder and index that every
aspect uses; trained on all aspects' training queries together, it is the same-budget supervised
control (one generic space learned from the same pairs); untrained it is the generic baseline.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import numpy as np

from embedlab.components import Component, describe, make_config
from embedlab.dataset import Corpus, Queries, Split
from embedlab.errors import ConfigError, EmbedlabError, InvalidInputError
from embedlab.ids import as_ids, check_ids
from embedlab.persistence import load_state, save_state
from embedlab.ranking import Ranking
from embedlab.retrievers import EmbeddingRetriever, create_component
from embedlab.timings import Timings

#: An aspect name: letters, digits, ``_`` and ``-`` (it names a state part and a query prefix).
ASPECT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _aspects(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        raise ValueError(f"aspects must be a list of names, got {value!r}")
    names = tuple(value)
    if not names:
        raise ValueError("aspects must name at least one aspect")
    bad = [n for n in names if not isinstance(n, str) or not ASPECT_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"aspect names are 1-64 letters, digits, '_' or '-'; got {bad[0]!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"aspects must be distinct, got {list(names)}")
    return names


@attrs.frozen(kw_only=True)
class AspectConfig:
    """``aspects`` (names, in order), ``shared`` (one space for all aspects: the generic baseline
    or the supervised control), ``default_aspect`` (for queries without an aspect prefix)."""

    aspects: tuple[str, ...] = attrs.field(converter=_aspects)
    shared: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))
    default_aspect: str | None = attrs.field(default=None)

    @default_aspect.validator
    def _known(self, attribute: attrs.Attribute, value: Any) -> None:
        if value is not None and value not in self.aspects:
            raise ValueError(f"default_aspect {value!r} is not one of the aspects {list(self.aspects)}")


class AspectRetriever(Component):
    """Named vectors per document, an index per aspect, aspect-conditioned search (module docstring).

    >>> AspectRetriever(aspects=["task", "method"],
    ...                 encoder={"name": "frozen-head", "head": "linear"})    # doctest: +SKIP
    """

    kind = "retriever"
    name = "aspects"
    Config = AspectConfig

    def __init__(self, config: AspectConfig | None = None, /, *, encoder: Any = "minilm", index: Any = "exact",
                 encoders: Mapping[str, Any] | None = None, indexes: Mapping[str, Any] | None = None,
                 **params: Any) -> None:
        super().__init__(config, **params)
        overrides = {"encoders": dict(encoders or {}), "indexes": dict(indexes or {})}
        for what, given in overrides.items():
            unknown = sorted(set(given) - set(self.spaces))
            if unknown:
                raise ConfigError(f"{self.name}: {what} for unknown space(s) {unknown}; spaces: {self.spaces}")
        self.stages: dict[str, EmbeddingRetriever] = {}
        for space in self.spaces:
            self.stages[space] = EmbeddingRetriever(
                encoder=create_component("encoder", overrides["encoders"].get(space, encoder)),
                index=create_component("index", overrides["indexes"].get(space, index)),
                label=f"aspect-{space}")
        self.label = "aspects"
        self.timings = Timings()
        self.doc_ids: np.ndarray | None = None

    @property
    def aspects(self) -> tuple[str, ...]:
        return self.config.aspects

    @property
    def spaces(self) -> list[str]:
        """The embedding spaces: one per aspect, or the single ``"shared"`` one."""
        return ["shared"] if self.config.shared else list(self.config.aspects)

    def stage(self, aspect: str) -> EmbeddingRetriever:
        """The first stage (encoder + index) that serves ``aspect``."""
        if aspect not in self.aspects:
            raise InvalidInputError(f"{self.name}: unknown aspect {aspect!r}; aspects: {list(self.aspects)}")
        return self.stages["shared" if self.config.shared else aspect]

    def parts(self) -> dict[str, Any]:
        return {f"{space}.{part}": c for space, stage in self.stages.items() for part, c in stage.parts().items()}

    def use_cache(self, cache: Any) -> None:
        for stage in self.stages.values():
            stage.use_cache(cache)

    # -- queries ------------------------------------------------------------------------------

    def parse(self, text: str, default: str | None = None) -> tuple[str, str]:
        """``(aspect, text without the prefix)`` of a query text (see the module docstring); a
        text without a known prefix gets ``default``, else ``default_aspect``."""
        head, colon, rest = text.partition(":")
        if colon and head.strip() in self.aspects:
            return head.strip(), rest.lstrip()
        if default is not None:
            return default, text
        if self.config.default_aspect is None:
            raise InvalidInputError(f"{self.name}: query {text[:60]!r} names no aspect; start it with one of "
                                    f"{[a + ': ' for a in self.aspects]} or set default_aspect")
        return self.config.default_aspect, text

    def _grouped(self, queries: Queries, aspect: str | None) -> dict[str, tuple[np.ndarray, Queries]]:
        """Per aspect: the positions of its queries and those queries with their prefixes removed."""
        if aspect is not None:
            self.stage(aspect)  # checks the name
        parsed = [self.parse(t, aspect) for t in queries.texts]
        wanted = [aspect or a for a, _ in parsed]
        groups = {}
        for name in dict.fromkeys(wanted):
            rows = np.flatnonzero(np.asarray(wanted) == name)
            groups[name] = (rows, Queries(queries.ids[rows], [parsed[i][1] for i in rows.tolist()]))
        return groups

    def _split(self, train: Split | None, aspect: str | None) -> Split | None:
        """``train`` restricted to ``aspect``'s queries (every query when None), prefixes removed."""
        if train is None:
            return None
        groups = self._grouped(train.queries, None)
        names = [aspect] if aspect is not None else list(groups)
        if aspect is not None and aspect not in groups:
            raise InvalidInputError(f"{self.name}: training split {train.name!r} has no query about aspect "
                                    f"{aspect!r} (queries start with '<aspect>: ')")
        ids = [q for n in names for q in groups[n][1].ids.tolist()]
        texts = [t for n in names for t in groups[n][1].texts]
        return Split(f"{train.name}:{aspect or 'all'}", Queries(ids, texts), {q: train.qrels[q] for q in ids})

    # -- build and search ------------------------------------------------------------------------

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Build every space on ``corpus``; with ``train``, each aspect's encoder learns from its own
        queries (``shared``: one encoder from all of them)."""
        self.timings = Timings()
        for space, stage in self.stages.items():
            stage.build(corpus, self._split(train, None if self.config.shared else space))
            self.timings.add_first_stage(stage.timings)
        self.doc_ids = corpus.ids
        return self.timings

    def search(self, queries: Queries, k: int, filter: Any = None, *, aspect: str | None = None) -> Ranking:
        """Each query's top ``k`` in the space of its aspect (its prefix, or ``aspect`` for all)."""
        if self.doc_ids is None:
            raise InvalidInputError(f"{self.name}: call build(corpus) (or load a saved retriever) before search")
        doc_ids = np.full((len(queries), k), "", dtype=object)
        scores = np.full((len(queries), k), -np.inf)
        timings = Timings()
        for name, (rows, group) in self._grouped(queries, aspect).items():
            stage = self.stage(name)
            vectors, seconds = stage.encode("queries", group.content_hash, group.inputs())
            timings.encode_queries_s += seconds
            start = time.perf_counter()
            found = Ranking.from_search(group.ids, stage.index.search(vectors, k, filter=filter), self.doc_ids)
            timings.search_s += time.perf_counter() - start
            doc_ids[rows, :found.k], scores[rows, :found.k] = found.doc_ids, found.scores
        self.timings = attrs.evolve(self.timings, encode_queries_s=timings.encode_queries_s,
                                    search_s=timings.search_s)
        return Ranking(queries.ids, as_ids(doc_ids), scores)

    def vectors(self, texts: Sequence[str], aspect: str, role: str = "documents") -> np.ndarray:
        """The ``aspect`` vectors of ``texts`` (``role`` ``"documents"`` or ``"queries"``): a
        document's named vectors are its vectors in each aspect."""
        if role not in ("documents", "queries"):
            raise InvalidInputError(f"{self.name}: role must be 'documents' or 'queries', got {role!r}")
        encoder = self.stage(aspect).encoder
        method = encoder.encode_documents if role == "documents" else encoder.encode_queries
        return np.asarray(method(list(texts)))

    # -- persistence ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Each space's index and encoder as parts (an encoder that cannot save itself, such as
        ``minilm``, is recorded by its config and rebuilt on load) and the document ids."""
        if self.doc_ids is None:
            raise InvalidInputError(f"{self.name}: nothing to save before build(corpus)")
        parts, rebuilt = {}, {}
        for space, stage in self.stages.items():
            parts[f"{space}-index"] = stage.index
            if callable(getattr(type(stage.encoder), "load", None)) and callable(getattr(stage.encoder, "save", None)):
                parts[f"{space}-encoder"] = stage.encoder
            else:
                rebuilt[space] = {"name": stage.encoder.name, **describe(stage.encoder)["config"]}
        identity = {key: value for key, value in describe(self).items() if key != "parts"}
        save_state(path, self, arrays={"doc_ids": np.array(self.doc_ids.tolist(), dtype=str)}, parts=parts,
                   meta={"rebuilt_encoders": rebuilt}, identity=identity)

    @classmethod
    def load(cls, path: str | Path) -> AspectRetriever:
        """A retriever written by :meth:`save`, ready to search (checksums verified)."""
        state = load_state(path, kind=cls.kind, name=cls.name)
        try:
            config = make_config(AspectConfig, state.config, cls.name)
        except ConfigError as error:
            raise state.error(f"saved config is invalid: {error}") from None
        spaces = ["shared"] if config.shared else list(config.aspects)
        rebuilt = state.value("rebuilt_encoders", dict, default={})
        encoders, indexes = {}, {}
        for space in spaces:
            indexes[space] = state.part(f"{space}-index", kind="index")
            if space not in rebuilt:
                encoders[space] = state.part(f"{space}-encoder", kind="encoder")
                continue
            spec = rebuilt[space]
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                raise state.error(f"the encoder of space {space!r} is not a component table")
            try:
                encoders[space] = create_component("encoder", spec)
            except (EmbedlabError, TypeError, ValueError, OSError) as error:
                raise state.error(f"cannot rebuild the encoder of space {space!r}: {error}") from None
        retriever = cls(config, encoders=encoders, indexes=indexes)
        doc_ids = state.array("doc_ids", kinds="U", ndim=1)
        for space, index in indexes.items():
            if len(index) != doc_ids.size:
                raise state.error(f"the index of space {space!r} holds {len(index)} vectors for "
                                  f"{doc_ids.size} document ids")
        try:
            retriever.doc_ids = as_ids(doc_ids.tolist())
            check_ids(retriever.doc_ids, "document")
        except EmbedlabError as error:
            raise state.error(f"bad document ids: {error}") from None
        return retriever
