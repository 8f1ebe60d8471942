"""``aspects-people``: a generated multi-aspect similarity task (the brief's verification task for
aspect-based document embeddings).

Each document describes one person with three aspects, **job**, **city** and **hobby**, in one of
several paraphrased templates; every aspect value is written in one of several surface forms
("physician", "doctor", "works in medicine") and a filler sentence is mixed in, so neither word
overlap nor template position gives an aspect away. Two documents are similar *in an aspect* when
they share its value.

As in Ostendorff et al. (JCDL 2022), documents, not queries, are split: ``train_fraction`` of them
(seeded) are training documents, the rest test documents. Queries are documents: query
``<doc>@<aspect>`` has the text ``"<aspect>: <document text>"`` (the aspect prefix is what an
``aspects`` retriever reads to pick the aspect's space). Split ``train``: training documents as
queries, relevant = the training documents sharing the aspect value (the document itself
included). Split ``test``: test documents as queries, relevant = the *other* test documents
sharing the value; every training document and the query's own document are excluded from its
ranking (the paper's kNN among test papers, the seed left out). Splits ``test-<aspect>`` hold one
aspect's test queries.
"""

from __future__ import annotations

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError

NAME = "aspects-people"
ASPECTS = ("job", "city", "hobby")

#: Per aspect, per value: surface forms (the first is the value's name).
VALUES: dict[str, dict[str, tuple[str, ...]]] = {
    "job": {
        "doctor": ("a doctor", "a physician", "a medical doctor at the local hospital"),
        "teacher": ("a teacher", "a schoolteacher", "an educator who teaches children"),
        "chef": ("a chef", "a cook in a restaurant kitchen", "a professional cook"),
        "lawyer": ("a lawyer", "an attorney", "a legal counsel"),
        "nurse": ("a nurse", "a registered nurse", "a caregiver on a hospital ward"),
        "engineer": ("an engineer", "a civil engineer", "an engineer who designs bridges"),
        "pilot": ("a pilot", "an airline pilot", "a captain who flies passenger jets"),
        "farmer": ("a farmer", "a grower of crops", "someone who runs a family farm"),
        "carpenter": ("a carpenter", "a woodworker", "a builder of wooden furniture"),
        "journalist": ("a journalist", "a reporter", "a news writer for a daily paper"),
    },
    "city": {
        "paris": ("Paris", "the French capital", "Paris, France"),
        "tokyo": ("Tokyo", "the Japanese capital", "Tokyo, Japan"),
        "cairo": ("Cairo", "the Egyptian capital", "Cairo, Egypt"),
        "lima": ("Lima", "the capital of Peru", "Lima, Peru"),
        "oslo": ("Oslo", "the Norwegian capital", "Oslo, Norway"),
        "sydney": ("Sydney", "the largest Australian city", "Sydney, Australia"),
        "toronto": ("Toronto", "the largest Canadian city", "Toronto, Canada"),
        "mumbai": ("Mumbai", "the Indian city formerly called Bombay", "Mumbai, India"),
        "berlin": ("Berlin", "the German capital", "Berlin, Germany"),
        "nairobi": ("Nairobi", "the Kenyan capital", "Nairobi, Kenya"),
    },
    "hobby": {
        "chess": ("playing chess", "chess", "competing in chess tournaments"),
        "painting": ("painting", "painting watercolours", "painting landscapes in oil"),
        "hiking": ("hiking", "long walks in the mountains", "trekking on mountain trails"),
        "cooking": ("baking bread", "baking", "baking cakes for friends"),
        "gardening": ("gardening", "growing vegetables", "tending a flower garden"),
        "swimming": ("swimming", "swimming laps in the pool", "open-water swimming"),
        "guitar": ("playing the guitar", "the guitar", "strumming folk songs on a guitar"),
        "photography": ("photography", "taking photographs", "shooting pictures with an old camera"),
        "cycling": ("cycling", "riding a road bike", "long bicycle rides"),
        "birdwatching": ("birdwatching", "watching birds", "spotting rare birds with binoculars"),
    },
}

TEMPLATES = (
    "{name} works as {job} in {city} and loves {hobby}.",
    "Living in {city}, {name} is {job}; in free time, {hobby} is the favourite pastime.",
    "{name} enjoys {hobby}. By profession {name} is {job}, based in {city}.",
    "Ask anyone in {city} about {name}: {job} by trade, passionate about {hobby}.",
    "When not busy as {job}, {name} spends weekends on {hobby} around {city}.",
    "{name}'s home is {city}. Job: {job}. Favourite pastime: {hobby}.",
    "Known for {hobby}, {name} earns a living as {job} and has settled in {city}.",
    "After years in {city}, {name} still works as {job} and never misses a chance for {hobby}.",
)

FILLERS = (
    "They have two cats.", "Their favourite colour is green.", "They were born in spring.",
    "They drink coffee every morning.", "They speak three languages.", "They own a small blue car.",
    "They read a novel every week.", "They prefer tea to coffee.", "They have a younger sister.",
    "They volunteer at a library.",
)

FIRST = ("Alex", "Maria", "Chen", "Fatima", "Ivan", "Aisha", "Lucas", "Yuki", "Omar", "Sofia", "Kwame",
         "Elena", "Ravi", "Ingrid", "Diego", "Amara", "Jonas", "Mei", "Tariq", "Hana")
LAST = ("Smith", "Garcia", "Okafor", "Kowalski", "Nguyen", "Haddad", "Larsen", "Silva", "Tanaka", "Mensah",
        "Rossi", "Novak", "Patel", "Berg", "Moreau", "Kim")


def people(*, documents: int = 500, train_fraction: float = 0.7, seed: int = 0) -> Dataset:
    """The generated task (see the module docstring); ``documents`` people, seeded."""
    if isinstance(documents, bool) or not isinstance(documents, int) or documents < 20:
        raise ConfigError(f"{NAME}: documents must be an integer >= 20, got {documents!r}")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) \
            or not 0 < train_fraction < 1:
        raise ConfigError(f"{NAME}: train_fraction must be in (0, 1), got {train_fraction!r}")
    rng = np.random.default_rng([seed, 16])
    ids = [f"p{i}" for i in range(documents)]
    labels = {a: rng.choice(sorted(VALUES[a]), size=documents).tolist() for a in ASPECTS}
    texts = []
    for i in range(documents):
        name = f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
        forms = {a: VALUES[a][labels[a][i]][rng.integers(3)] for a in ASPECTS}
        sentence = TEMPLATES[rng.integers(len(TEMPLATES))].format(name=name, **forms)
        filler = FILLERS[rng.integers(len(FILLERS))]
        texts.append(f"{filler} {sentence}" if rng.random() < 0.5 else f"{sentence} {filler}")
    order = rng.permutation(documents)
    n_train = min(max(int(round(train_fraction * documents)), 1), documents - 2)
    fold = np.full(documents, "test", dtype=object)
    fold[order[:n_train]] = "train"
    corpus = Corpus(ids, texts, attributes={**{a: np.asarray(labels[a], dtype=object) for a in ASPECTS},
                                            "fold": fold})
    query_ids, query_texts = [], []
    qrels: dict[str, dict[str, dict[str, int]]] = {"train": {}, "test": {}, **{f"test-{a}": {} for a in ASPECTS}}
    members = {f: [i for i in range(documents) if fold[i] == f] for f in ("train", "test")}
    train_ids = [ids[i] for i in members["train"]]
    exclude: dict[str, dict[str, list[str]]] = {"test": {}, **{f"test-{a}": {} for a in ASPECTS}}
    for aspect in ASPECTS:
        for split in ("train", "test"):
            for i in members[split]:
                qid = f"{ids[i]}@{aspect}"
                query_ids.append(qid)
                query_texts.append(f"{aspect}: {texts[i]}")
                same = [ids[j] for j in members[split] if labels[aspect][j] == labels[aspect][i]
                        and (split == "train" or j != i)]
                if not same:
                    continue  # a test value held by one test document: nothing to find
                judged = {d: 1 for d in same}
                if split == "train":
                    qrels["train"][qid] = judged
                else:
                    qrels["test"][qid] = qrels[f"test-{aspect}"][qid] = judged
                    exclude["test"][qid] = exclude[f"test-{aspect}"][qid] = [ids[i], *train_ids]
    metadata = {"aspects": list(ASPECTS), "train_documents": n_train, "test_documents": documents - n_train}
    return Dataset(NAME, corpus, Queries(query_ids, query_texts), qrels, metadata=metadata, exclude=exclude)
