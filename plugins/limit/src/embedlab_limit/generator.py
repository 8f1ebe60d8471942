"""``limit-generated``: LIMIT-style corpora of any size (Weller et al., 2025, section 5 and
google-deepmind/limit ``code/generate_limit_dataset.ipynb``).

* Relevance is LIMIT's "dense" pattern: the first ``queries`` k-subsets of the ``documents`` people
  in lexicographic order (all C(documents, k) by default).
* Every query gets its own attribute X (distinct, drawn from the vocabulary): the query is
  "Who likes X?" and exactly the k people of its subset like X.
* Each person then receives "filler" attributes, drawn from the attributes no query uses, until they
  like ``items_per_document`` things (LIMIT's ``min_items``: 45). Fillers never occur in a query, so
  the qrels of a query are exactly the people whose document mentions its attribute.
* ``distractors`` extra people like fillers only (the full LIMIT has 46 + 49,954 such documents).
* Document: "<Name> likes A, B, ... and Z." with the liked attributes in random order, id the name
  with ``_`` for spaces (as ``limit-small``); the corpus order is shuffled too. Everything random
  comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm.auto import tqdm

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError
from embedlab_limit.limit_small import trec_safe
from embedlab_limit.relevance import combination_count
from embedlab_limit.vocabulary import builtin_attributes, person_names

NAME = "limit-generated"


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{NAME}: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def load_attributes(attributes: Sequence[str] | str | Path | None) -> list[str]:
    """The vocabulary: the built-in "Adjective Noun" phrases, a list of strings, or a text file with
    one attribute a line (blank lines ignored). Attributes must be distinct."""
    if attributes is None:
        return builtin_attributes()
    if isinstance(attributes, (str, Path)):
        file = Path(attributes).expanduser()
        if not file.is_file():
            raise ConfigError(f"{NAME}: attributes file {file} does not exist (one attribute a line)")
        try:
            text = file.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{NAME}: attributes file {file} is not UTF-8 text ({error.reason})") from None
        attributes = [line.strip() for line in text.splitlines() if line.strip()]
    words = [str(a).strip() for a in attributes]
    if not all(words):
        raise ConfigError(f"{NAME}: attributes must be non-empty strings")
    if len(set(words)) != len(words):
        raise ConfigError(f"{NAME}: attributes must be distinct ({len(words) - len(set(words))} repeated)")
    return words


def _sentence(name: str, liked: list[str]) -> str:
    if len(liked) == 1:
        return f"{name} likes {liked[0]}."
    return f"{name} likes {', '.join(liked[:-1])} and {liked[-1]}."


def limit_generated(*, documents: int = 46, queries: int | None = None, k: int = 2, items_per_document: int = 45,
                    distractors: int = 0, seed: int = 0,
                    attributes: Sequence[str] | str | Path | None = None) -> Dataset:
    """A LIMIT-style dataset: ``documents`` people whose every k-subset (or the first ``queries``
    of them) is the answer to one "Who likes X?" query, plus ``distractors`` never-relevant people.

    The defaults with ``queries=1000`` give LIMIT-small's shape (46 documents, 1000 queries, 2000
    qrels). ``attributes`` replaces the built-in vocabulary of 15,200 attributes (a list, or a file
    with one attribute a line); asking for more queries than there are attributes is an error.
    """
    _count("documents", documents, 1)
    _count("k", k, 1)
    _count("items_per_document", items_per_document, 1)
    _count("distractors", distractors, 0)
    if queries is not None:
        _count("queries", queries, 1)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{NAME}: seed must be an integer, got {seed!r}")
    if k > documents:
        raise ConfigError(f"{NAME}: k={k} relevant documents per query need documents >= {k}, got {documents}")
    total = combination_count(documents, k)
    if queries is not None and queries > total:
        raise ConfigError(f"{NAME}: {documents} documents have only C({documents},{k}) = {total} distinct "
                          f"{k}-subsets, so at most {total} queries; got queries={queries}")
    vocabulary = load_attributes(attributes)
    wanted = total if queries is None else queries
    if wanted > len(vocabulary):
        raise ConfigError(f"{NAME}: {wanted} queries (the {'first ' + str(queries) if queries else 'all'} "
                          f"{k}-combinations of {documents} documents) need {wanted} distinct attributes, but the "
                          f"vocabulary has {len(vocabulary)}. Use fewer documents or queries, or pass a larger "
                          "attributes list/file.")
    subsets = list(itertools.islice(itertools.combinations(range(documents), k), wanted))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(vocabulary))
    query_items = [vocabulary[i] for i in order[:wanted]]
    fillers = [vocabulary[i] for i in order[wanted:]]
    liked: list[list[str]] = [[] for _ in range(documents + distractors)]
    for item, subset in zip(query_items, subsets):
        for doc in subset:
            liked[doc].append(item)
    shortest = min(len(items) for items in liked)
    if items_per_document - shortest > len(fillers):
        raise ConfigError(f"{NAME}: a document needs {items_per_document - shortest} filler attributes to like "
                          f"{items_per_document} things, but only {len(fillers)} attributes are left after the "
                          f"{wanted} query attributes. Lower items_per_document or pass more attributes.")
    for items in tqdm(liked, desc=f"{NAME}: documents", unit="doc", disable=None, leave=False):
        missing = items_per_document - len(items)
        if missing > 0:
            items.extend(fillers[i] for i in rng.choice(len(fillers), missing, replace=False))
        rng.shuffle(items)
    names = person_names(documents + distractors, rng)
    rows = rng.permutation(documents + distractors)
    corpus = Corpus(ids=[trec_safe(names[r]) for r in rows], texts=[_sentence(names[r], liked[r]) for r in rows],
                    attributes={"distractor": rows >= documents})
    query_ids = [f"query_{q}" for q in range(wanted)]
    qrels = {qid: {trec_safe(names[doc]): 1 for doc in subset} for qid, subset in zip(query_ids, subsets)}
    metadata = {"documents": documents + distractors, "relevant_pool": documents, "distractors": distractors,
                "queries": wanted, "k": k, "items_per_document": items_per_document, "seed": seed,
                "vocabulary": "builtin" if attributes is None else "custom", "vocabulary_size": len(vocabulary)}
    return Dataset(NAME, corpus, Queries(query_ids, [f"Who likes {item}?" for item in query_items]),
                   {"test": qrels}, metadata)
