"""``posir-needle``: the relevant passage moved through long documents (PosIR's protocol on
generated data).

Each query is one needle fact (:func:`embedlab_longembed.words.needle_facts`) and its one relevant
document is prose (:func:`embedlab_longembed.words.haystack_sentences`, per-document order) of a
nominal length from ``lengths`` (tokens; at most ``0.75 * length`` words) with the fact planted at a
depth from ``bins`` evenly spaced depths (bin centres of ``[0, 1]``). Lengths and depths are crossed
so that every (length, depth) cell holds the same number of documents (``queries`` must be a
multiple of ``len(lengths) * bins``). Every document is every other query's distractor.

Corpus attributes: ``fact_start``/``fact_end`` (character span of the fact), ``fact_depth`` (its
middle over the text length, PosIR's ``relpos``, measured: a fact sits between sentences, so it is
near its nominal depth, not at it), ``depth_bin`` (the nominal depth's bin) and ``length`` (the nominal
length).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from embedlab_longembed.synthetic import WORDS_PER_TOKEN, plant
from embedlab_longembed.words import haystack_sentences, needle_facts

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError

NAME = "posir-needle"
#: Lengths scaled to MiniLM's 256-token window: inside it, at its edge, twice and four times it.
DEFAULT_LENGTHS = (128, 256, 512, 1024)


def posir_needle(*, lengths: Sequence[int] = DEFAULT_LENGTHS, bins: int = 10, queries: int = 200,
                 seed: int = 0) -> Dataset:
    """The generated PosIR task (see the module docstring)."""
    lengths = [int(x) for x in lengths]
    facts = needle_facts()
    if not lengths or min(lengths) < 32:
        raise ConfigError(f"{NAME}: lengths must be token counts >= 32, got {lengths}")
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ConfigError(f"{NAME}: bins must be an integer >= 1, got {bins!r}")
    cells = len(lengths) * bins
    if isinstance(queries, bool) or not isinstance(queries, int) or queries < cells or queries % cells:
        raise ConfigError(f"{NAME}: queries must be a positive multiple of len(lengths) * bins = {cells}, "
                          f"got {queries!r}")
    if queries > len(facts):
        raise ConfigError(f"{NAME}: at most {len(facts)} queries (one needle fact each), got {queries}")
    rng = np.random.default_rng([seed, 3])
    chosen = [facts[i] for i in rng.permutation(len(facts))[:queries].tolist()]
    cell = np.arange(queries) % cells
    length_of = np.asarray(lengths)[cell // bins]
    depth_of = (cell % bins + 0.5) / bins
    prose = haystack_sentences()
    texts, starts, ends = [], [], []
    for (fact, _), length, depth in zip(chosen, length_of.tolist(), depth_of.tolist()):
        words = int(length * WORDS_PER_TOKEN)
        rounds = words // max(sum(len(s.split()) for s in prose), 1) + 1
        haystack = [prose[i] for _ in range(rounds) for i in rng.permutation(len(prose)).tolist()]
        text, start, end = plant(haystack, fact, words, rng, depth=depth)
        texts.append(text)
        starts.append(start)
        ends.append(end)
    ids = [f"posir-{i}" for i in range(queries)]
    start_a, end_a = np.asarray(starts), np.asarray(ends)
    relpos = np.clip((start_a + end_a) / 2 / np.maximum([len(t) for t in texts], 1), 0, 1)
    corpus = Corpus(ids, texts, attributes={"fact_start": start_a, "fact_end": end_a, "fact_depth": relpos,
                                            "length": length_of, "depth_bin": cell % bins})
    query_ids = [f"posir-q{i}" for i in range(queries)]
    return Dataset(NAME, corpus, Queries(query_ids, [q for _, q in chosen]),
                   {"test": {q: {d: 1} for q, d in zip(query_ids, ids)}},
                   metadata={"lengths": lengths, "bins": bins, "seed": seed})
