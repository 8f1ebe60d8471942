"""The ``se-dsi`` retriever: SE-DSI (Tang et al., 2023) on top of embedlab-dsi's ``dsi``.

SE-DSI changes two things of DSI, both about what the model memorises:

* **Elaborative-description ids** (``docids="ed"``): a document's id is a short natural-language
  description of it instead of a number, so the decoder emits words related to the query. The
  paper generates it with doc2query-T5; no generator can be downloaded here, so ours is
  *extractive*: the document's ``ed_terms`` highest tf-idf words, plus a final rank token that
  separates documents with the same words (ids stay unique and prefix-free).
* **Rehearsal contents** (``rehearsal``): several indexing inputs per document, each mapped to its
  id: the leading passage (DSI's only input), the ``sentences`` key sentences, and the ``terms``
  key terms joined as a pseudo-query.

Everything else (the frozen encoder + decoder model, training loop, constrained decoding, persistence)
is ``dsi``'s: :class:`SEDSIRetriever` overrides :meth:`~embedlab_dsi.DSIRetriever.make_docids` and
:meth:`~embedlab_dsi.DSIRetriever.indexing_groups` only.
"""

from __future__ import annotations

from typing import Any, Sequence

import attrs
from embedlab_dsi import DSIRetriever
from embedlab_dsi.descriptions import TermWeights
from embedlab_dsi.docids import SCHEMES, Docids

from embedlab.dataset import Corpus
from embedlab.errors import InvalidInputError

_v = attrs.validators
_int = _v.instance_of(int)
REHEARSAL = ("passage", "sentences", "terms")
NO_TERM = "<none>"


def _rehearsal(value: Any) -> tuple[str, ...]:
    parts = (value,) if isinstance(value, str) else tuple(value)
    unknown = sorted(set(parts) - set(REHEARSAL))
    if unknown or not parts:
        raise ValueError(f"rehearsal: choose one or more of {', '.join(REHEARSAL)}, got {value!r}")
    return tuple(p for p in REHEARSAL if p in parts)


def description_ids(descriptions: Sequence[Sequence[str]]) -> tuple[Docids, list[str]]:
    """Ids from one word sequence per document (padded to one length with ``<none>``) and a final
    rank token among the documents with the same words; returns the ids and the word vocabulary
    (token ``i < len(words)`` is ``words[i]``; token ``len(words) + r`` is rank ``r``)."""
    if not descriptions:
        raise InvalidInputError("description ids: no documents")
    width = max(1, max(len(d) for d in descriptions))
    padded = [tuple(d) + (NO_TERM,) * (width - len(d)) for d in descriptions]
    vocabulary = sorted({w for d in padded for w in d})
    token = {w: i for i, w in enumerate(vocabulary)}
    seen: dict[tuple[str, ...], int] = {}
    codes = []
    for words in padded:
        rank = seen.get(words, 0)
        seen[words] = rank + 1
        codes.append((*(token[w] for w in words), len(vocabulary) + rank))
    return Docids(tuple(codes), len(vocabulary) + max(seen.values()), "ed"), vocabulary


class SEDSIRetriever(DSIRetriever):
    """SE-DSI as a first stage (see the module docstring); parameters as ``dsi`` plus those below."""

    name = "se-dsi"

    @attrs.frozen(kw_only=True)
    class Config(DSIRetriever.Config):
        """``docids``: ``"ed"`` (extractive elaborative descriptions, the default) or one of
        ``dsi``'s schemes; ``ed_terms``: words per description id; ``rehearsal``: the indexing
        inputs per document (``passage``, ``sentences``, ``terms``); ``sentences``: key sentences
        per document; ``terms``: key terms in the terms input."""

        docids: str = attrs.field(default="ed", validator=_v.in_(("ed", *SCHEMES)))
        ed_terms: int = attrs.field(default=3, validator=[_int, _v.ge(1)])
        rehearsal: tuple[str, ...] = attrs.field(default=REHEARSAL, converter=_rehearsal)
        sentences: int = attrs.field(default=3, validator=[_int, _v.ge(1)])
        terms: int = attrs.field(default=10, validator=[_int, _v.ge(1)])

    def __init__(self, config: Any = None, /, **params: Any) -> None:
        super().__init__(config, **params)
        self.vocabulary: list[str] = []

    def make_docids(self, corpus: Corpus) -> Docids:
        if self.config.docids != "ed":
            return super().make_docids(corpus)
        weights = TermWeights.fit(corpus.documents())
        docids, self.vocabulary = description_ids([weights.key_terms(d, self.config.ed_terms)
                                                   for d in corpus.documents()])
        return docids

    def describe_id(self, position: int) -> str:
        """A document's elaborative-description id as words (``"json decode parse #0"``)."""
        code = self.docids.codes[position]
        words = [self.vocabulary[t] for t in code[:-1] if self.vocabulary[t] != NO_TERM]
        return " ".join(words) + f" #{code[-1] - len(self.vocabulary)}"

    def indexing_groups(self, corpus: Corpus) -> list[tuple[str, Sequence[str], Sequence[int]]]:
        documents = corpus.documents()
        weights = TermWeights.fit(documents)
        groups = list(super().indexing_groups(corpus)) if "passage" in self.config.rehearsal else []
        if "sentences" in self.config.rehearsal:
            pairs = [(s, p) for p, d in enumerate(documents) for s in weights.key_sentences(d, self.config.sentences)]
            groups.append(("sentence", [s for s, _ in pairs], [p for _, p in pairs]))
        if "terms" in self.config.rehearsal:
            texts = [" ".join(weights.key_terms(d, self.config.terms)) for d in documents]
            keep = [p for p, t in enumerate(texts) if t]
            groups.append(("terms", [texts[p] for p in keep], keep))
        return groups
