"""``sitemb-bios``: short biographies whose chunks (sentences) need their context.

Each biography names its person only in its first sentence ("Alma Rasmussen was born in Oslo in
1931."); the following sentences say "She"/"He" ("She moved to Lisbon in 1962."). Cities, subjects,
jobs and years come from small pools, so many biographies share each sentence but for the pronoun's
referent. The corpus is the sentences (chunks), with attributes ``document`` (the biography) and
``position`` (the sentence's place in it). Queries name the person and one fact; a ``named`` query
asks about the first sentence (answerable from the chunk alone), a ``pronoun`` query about a later
one (answerable only with the context). ``pronoun_share`` sets the mix.
"""

from __future__ import annotations

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError

FIRST = {"She": ("Alma", "Beatrix", "Cecilia", "Dagny", "Edith", "Flora", "Greta", "Hilde", "Imogen", "Juno",
                 "Klara", "Linnea", "Mira", "Nora", "Petra", "Rosalind", "Sabine", "Tamsin", "Ursula", "Vera"),
         "He": ("Anton", "Basil", "Bruno", "Cyrus", "Dorian", "Elio", "Felix", "Gideon", "Hector", "Igor",
                "Jasper", "Kasimir", "Leander", "Magnus", "Nikolai", "Oskar", "Quentin", "Rufus", "Silas", "Tobias")}
SURNAMES = ("Abernathy", "Blackwood", "Castellano", "Delacroix", "Eriksen", "Fairbanks", "Galloway", "Hargreaves",
            "Ivanova", "Jablonski", "Kowalczyk", "Lindqvist", "Montgomery", "Nakamura", "Pemberton", "Quintero",
            "Rasmussen", "Sandoval", "Thornbury", "Underwood")
CITIES = ("Lisbon", "Oslo", "Kyoto", "Tallinn", "Cusco", "Halifax")
SUBJECTS = ("chemistry", "history", "law", "music", "medicine", "geology")
JOBS = ("a teacher", "a surgeon", "a pilot", "a librarian", "an engineer", "a baker")
#: (template of the sentence, template of its question); {P} is the pronoun, {N} the full name.
FACTS = (
    ("{P} moved to {city} in {year}.", "When did {N} move to {city}?"),
    ("{P} studied {subject} in {city2}.", "Where did {N} study {subject}?"),
    ("{P} worked as {job} for {years} years.", "How long did {N} work as {job}?"),
    ("{P} retired to {city3} in {year2}.", "When did {N} retire to {city3}?"),
)


def sitemb_bios(*, people: int = 200, pronoun_share: float = 1.0, seed: int = 0) -> Dataset:
    """``people`` biographies of 5 sentences and one query each (see the module docstring)."""
    names = [(p, f) for p in FIRST for f in FIRST[p]]
    if isinstance(people, bool) or not isinstance(people, int) or not 1 <= people <= len(names) * len(SURNAMES):
        raise ConfigError(f"sitemb-bios: people must be an integer in [1, {len(names) * len(SURNAMES)}], "
                          f"got {people!r}")
    if not isinstance(pronoun_share, (int, float)) or not 0 <= pronoun_share <= 1:
        raise ConfigError(f"sitemb-bios: pronoun_share must be in [0, 1], got {pronoun_share!r}")
    rng = np.random.default_rng([seed, 6])
    picks = rng.choice(len(names) * len(SURNAMES), size=people, replace=False)
    ids, texts, document, position, query_ids, questions, qrels, kinds = [], [], [], [], [], [], {}, []
    for person, pick in enumerate(picks.tolist()):
        pronoun, first = names[pick // len(SURNAMES)]
        name = f"{first} {SURNAMES[pick % len(SURNAMES)]}"
        values = {"P": pronoun, "N": name, "city": rng.choice(CITIES), "city2": rng.choice(CITIES),
                  "city3": rng.choice(CITIES), "subject": rng.choice(SUBJECTS), "job": rng.choice(JOBS),
                  "year": int(rng.integers(1950, 1990)), "year2": int(rng.integers(1995, 2020)),
                  "years": int(rng.integers(3, 30)), "born": rng.choice(CITIES), "birth": int(rng.integers(1920, 1945))}
        sentences = [f"{name} was born in {values['born']} in {values['birth']}."]
        sentences += [template.format(**values) for template, _ in FACTS]
        for j, sentence in enumerate(sentences):
            ids.append(f"bio{person}-s{j}")
            texts.append(sentence)
            document.append(person)
            position.append(j)
        if rng.random() < pronoun_share:
            fact = int(rng.integers(len(FACTS)))
            question, target, kind = FACTS[fact][1].format(**values), fact + 1, "pronoun"
        else:
            question, target, kind = f"Where was {name} born?", 0, "named"
        query_ids.append(f"bio{person}-q")
        questions.append(question)
        qrels[f"bio{person}-q"] = {f"bio{person}-s{target}": 1}
        kinds.append(kind)
    corpus = Corpus(ids, texts, attributes={"document": np.asarray(document), "position": np.asarray(position)})
    return Dataset("sitemb-bios", corpus, Queries(query_ids, questions), {"test": qrels},
                   metadata={"people": people, "pronoun_share": pronoun_share, "seed": seed,
                             "query_kinds": dict(zip(query_ids, kinds))})
