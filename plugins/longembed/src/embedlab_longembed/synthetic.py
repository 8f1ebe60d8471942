"""LongEmbed's synthetic tasks (Zhu et al., 2024, section 3.2): personalised passkey retrieval and
needle-in-a-haystack retrieval, generated locally at any length.

For a target length ``L`` (tokens) every document has at most ``0.75 * L`` words (the paper's
1 token ~ 0.75 word) and one planted fact at a uniformly random sentence boundary. Per length:
``documents`` candidate documents (100) shared by ``queries`` queries (50), each query relevant to
exactly one document; the others are distractors built the same way. The paper scores Acc@1
(= nDCG@1 with one relevant document), per length.

* **passkey**: haystack = repeats of "The grass is green. The sky is blue. The sun is yellow. Here we
  go. There and back again."; fact "{Name}'s pass key is {K}. Remember it. {K} is the pass key for
  {Name}." with a distinct name per document and a random 5-digit K; query "what is the passkey for
  {Name}?".
* **needle**: haystack = prose sentences in a per-document random order (the paper uses Paul Graham's
  essays; we use the standard library's docstrings, :func:`~embedlab_longembed.words.haystack_sentences`);
  fact and question from :func:`~embedlab_longembed.words.needle_facts`.

Corpus attributes ``fact_start``/``fact_end`` (character span of the fact) and ``fact_depth`` (its
middle as a fraction of the text) record where each fact sits, for position analyses.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError
from embedlab_longembed.words import haystack_sentences, needle_facts, person_names

PASSKEY_HAYSTACK = ("The grass is green.", "The sky is blue.", "The sun is yellow.", "Here we go.",
                    "There and back again.")
#: The lengths of the paper's tables (tokens).
LENGTHS = (256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
WORDS_PER_TOKEN = 0.75


def _check(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"longembed: {name} must be an integer {bound}, got {value!r}")
    return value


def plant(haystack: Sequence[str], fact: str, words: int, rng: np.random.Generator,
          depth: float | None = None) -> tuple[str, int, int]:
    """``fact`` inserted among as many ``haystack`` sentences (in order) as fit ``words`` words with
    it, at a uniformly random sentence boundary, or at the boundary nearest to ``depth`` (0: first,
    1: last) when given; returns the text and the fact's character span."""
    budget = words - len(fact.split())
    kept, used = [], 0
    for sentence in haystack:
        n = len(sentence.split())
        if used + n > budget:
            break
        kept.append(sentence)
        used += n
    at = int(rng.integers(0, len(kept) + 1)) if depth is None else int(round(depth * len(kept)))
    before = " ".join(kept[:at])
    start = len(before) + (1 if before else 0)
    text = " ".join(kept[:at] + [fact] + kept[at:])
    return text, start, start + len(fact)


def _dataset(name: str, length: int, facts: list[tuple[str, str]], haystacks: list[list[str]], queries: int,
             rng: np.random.Generator, metadata: dict) -> Dataset:
    words = int(length * WORDS_PER_TOKEN)
    texts, starts, ends = [], [], []
    for (fact, _), haystack in zip(facts, haystacks):
        text, start, end = plant(haystack, fact, words, rng)
        texts.append(text)
        starts.append(start)
        ends.append(end)
    n = len(texts)
    ids = [f"{name}-{length}-{i}" for i in range(n)]
    starts_a, ends_a = np.asarray(starts), np.asarray(ends)
    depth = (starts_a + ends_a) / 2 / np.maximum([len(t) for t in texts], 1)
    corpus = Corpus(ids, texts, attributes={"fact_start": starts_a, "fact_end": ends_a, "fact_depth": depth})
    asked = np.sort(rng.choice(n, size=queries, replace=False))
    query_ids = [f"{name}-{length}-q{i}" for i in asked.tolist()]
    qrels = {qid: {ids[i]: 1} for qid, i in zip(query_ids, asked.tolist())}
    return Dataset(f"longembed-{name}-{length}", corpus, Queries(query_ids, [facts[i][1] for i in asked.tolist()]),
                   {"test": qrels}, metadata={"length": length, "max_words": words, **metadata})


def passkey(length: int = 1024, *, documents: int = 100, queries: int = 50, seed: int = 0) -> Dataset:
    """Personalised passkey retrieval at ``length`` tokens (see the module docstring)."""
    _check("length", length, 32)
    _check("documents", documents, 1, 2000)
    _check("queries", queries, 1, documents)
    rng = np.random.default_rng([seed, length, 1])
    names = person_names(documents, rng)
    keys = rng.integers(10_000, 100_000, size=documents)
    facts = [(f"{name}'s pass key is {key}. Remember it. {key} is the pass key for {name}.",
              f"what is the passkey for {name}?") for name, key in zip(names, keys.tolist())]
    repeats = int(length * WORDS_PER_TOKEN) // 3 + 1
    haystack = list(PASSKEY_HAYSTACK) * (repeats // len(PASSKEY_HAYSTACK) + 1)
    return _dataset("passkey", length, facts, [haystack] * documents, queries, rng,
                    {"task": "passkey", "seed": seed})


def needle(length: int = 1024, *, documents: int = 100, queries: int = 50, seed: int = 0) -> Dataset:
    """Needle-in-a-haystack retrieval at ``length`` tokens (see the module docstring)."""
    all_facts = needle_facts()
    _check("length", length, 32)
    _check("documents", documents, 1, len(all_facts))
    _check("queries", queries, 1, documents)
    rng = np.random.default_rng([seed, length, 2])
    facts = [all_facts[i] for i in rng.choice(len(all_facts), size=documents, replace=False).tolist()]
    prose = haystack_sentences()
    words = int(length * WORDS_PER_TOKEN)
    rounds = words // max(sum(len(s.split()) for s in prose), 1) + 1
    haystacks = [[prose[i] for _ in range(rounds) for i in rng.permutation(len(prose)).tolist()]
                 for _ in range(documents)]
    return _dataset("needle", length, facts, haystacks, queries, rng,
                    {"task": "needle", "seed": seed, "haystack_sentences": len(prose)})
