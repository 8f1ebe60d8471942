"""The ``dsi-pp`` retriever: DSI++ (Mehta et al., EMNLP 2023) continual indexing on top of ``dsi``.

``build(corpus, train)`` trains a DSI on the first corpus ``D0`` (as ``dsi``). ``add(increment)``
then indexes new documents by *continuing* training from the current weights on the new documents'
indexing examples only, which makes the model forget earlier documents. DSI++'s two remedies:

* **Generative memory** (``replay="pseudo-queries"``): each increment also replays pseudo-queries
  of earlier documents mapped to their ids (and, ``new_pseudo_queries``, pseudo-queries of the new
  documents for the retrieval task). The paper trains a query generator on ``D0``'s (query,
  document) pairs; ours are *extractive* (a document's ``replay_terms`` highest tf-idf words),
  since no generator can be downloaded here. ``replay="indexing"`` replays earlier documents'
  own indexing examples (experience replay, a control); ``"none"`` is plain continual indexing.
* **Flatter minima** (``sam_rho`` > 0): every step is a Sharpness-Aware Minimization step
  (embedlab-train's loop), which the paper finds makes memorised documents more stable.

Ids must extend to new documents without renumbering old ones, so the schemes are ``atomic`` or
``naive`` over a fixed ``capacity`` (the decoder's output layer is sized for it at the first build).
"""

from __future__ import annotations

import time
from typing import Any

import attrs
import numpy as np
from embedlab_dsi import DSIRetriever
from embedlab_dsi.descriptions import TermWeights
from embedlab_dsi.docids import Docids, make_docids
from embedlab_dsi.training import Examples
from embedlab_dsi.trie import DocidTrie

from embedlab.dataset import Corpus, Split
from embedlab.errors import InvalidInputError
from embedlab.timings import Timings

_v = attrs.validators
_int = _v.instance_of(int)
_number = _v.instance_of((int, float))
REPLAY = ("none", "pseudo-queries", "indexing")


class DSIPPRetriever(DSIRetriever):
    """DSI++ as a first stage that grows: ``build`` then ``add`` increments (module docstring)."""

    name = "dsi-pp"

    @attrs.frozen(kw_only=True)
    class Config(DSIRetriever.Config):
        """``docids``: ``atomic`` (default) or ``naive``; ``capacity``: documents the id space holds
        (None: twice the first corpus); ``replay``: ``pseudo-queries``, ``indexing`` or ``none``;
        ``replay_fraction``: the share of earlier documents replayed per increment (seeded sample);
        ``replay_terms``: words per pseudo-query; ``new_pseudo_queries``: also train pseudo-queries
        of the new documents; ``sam_rho``: SAM's radius (0: AdamW alone); ``increment_epochs``:
        epochs per increment (None: ``epochs``)."""

        docids: str = attrs.field(default="atomic", validator=_v.in_(("atomic", "naive")))
        capacity: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]))
        replay: str = attrs.field(default="pseudo-queries", validator=_v.in_(REPLAY))
        replay_fraction: float = attrs.field(default=1.0, validator=[_number, _v.gt(0), _v.le(1)])
        replay_terms: int = attrs.field(default=8, validator=[_int, _v.ge(1)])
        new_pseudo_queries: bool = attrs.field(default=True, validator=_v.instance_of(bool))
        sam_rho: float = attrs.field(default=0.0, validator=[_number, _v.ge(0)])
        increment_epochs: int | None = attrs.field(default=None, validator=_v.optional([_int, _v.ge(1)]))

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.corpus: Corpus | None = None
        self.capacity: int | None = None
        self.increments: list[int] = []

    @property
    def sam_rho(self) -> float:  # type: ignore[override]
        return float(self.config.sam_rho)

    def make_docids(self, corpus: Corpus) -> Docids:
        """Ids of ``corpus`` taken from a ``capacity``-sized id space fixed at the first build."""
        if self.capacity is None:
            self.capacity = self.config.capacity or 2 * len(corpus)
        if len(corpus) > self.capacity:
            raise InvalidInputError(f"dsi-pp: {len(corpus)} documents exceed the id capacity {self.capacity}; "
                                    "build with a larger capacity")
        space = make_docids(self.config.docids, self.capacity, base=self.config.base)
        return Docids(space.codes[:len(corpus)], space.vocab, space.scheme)

    def build(self, corpus: Corpus, train: Split | None = None) -> Timings:
        """Index the first corpus (as ``dsi``); later documents come through :meth:`add`."""
        self.capacity = None
        timings = super().build(corpus, train)
        self.corpus, self.increments = corpus, [len(corpus)]
        return timings

    def add(self, increment: Corpus) -> Timings:
        """Index the documents of ``increment`` by continued training (with replay, see the module
        docstring); earlier documents keep their ids."""
        built, old = self._state(), self.corpus
        if old is None:
            raise InvalidInputError("dsi-pp: add() continues a build() of this object (a loaded dsi-pp "
                                    "searches but does not keep its documents' texts to replay)")
        clash = sorted(set(increment.ids.tolist()) & set(old.ids.tolist()))
        if clash:
            raise InvalidInputError(f"dsi-pp: {len(clash)} document id(s) are already indexed, e.g. {clash[:3]}")
        self.timings = timings = Timings()
        start = time.perf_counter()
        corpus = Corpus(np.concatenate([old.ids, increment.ids]), old.documents() + increment.documents())
        docids = self.make_docids(corpus)
        examples = Examples.build(self.increment_groups(corpus, len(old)))
        model, record = self._train(corpus, docids, DocidTrie(docids), examples, [], [], start=built.model,
                                    epochs=self.config.increment_epochs or self.config.epochs)
        self._install(corpus.ids, docids, model, record)
        self.corpus = corpus
        self.increments.append(len(increment))
        timings.fit_encoder_s = time.perf_counter() - start
        return timings

    def increment_groups(self, corpus: Corpus, old: int) -> list[tuple[str, list[str], list[int]]]:
        """The examples of one increment: the new documents' indexing (and pseudo-query) examples
        and the replay of earlier documents (positions ``< old``)."""
        config = self.config
        documents = corpus.documents()
        new = list(range(old, len(corpus)))
        groups = [("index", [documents[p] for p in new], new)]
        weights = TermWeights.fit(documents)

        def pseudo_query(p: int) -> str:
            return " ".join(weights.key_terms(documents[p], config.replay_terms))

        if config.new_pseudo_queries:
            groups.append(("pseudo-query", [pseudo_query(p) for p in new], new))
        if config.replay != "none":
            count = max(1, round(config.replay_fraction * old))
            rng = np.random.default_rng([config.seed, len(self.increments)])
            replayed = sorted(rng.choice(old, count, replace=False).tolist())
            texts = [pseudo_query(p) if config.replay == "pseudo-queries" else documents[p] for p in replayed]
            groups.append(("replay", texts, replayed))
        kept = [(kind, [(t, p) for t, p in zip(texts, positions) if t.strip()]) for kind, texts, positions in groups]
        return [(kind, [t for t, _ in pairs], [p for _, p in pairs]) for kind, pairs in kept if pairs]
