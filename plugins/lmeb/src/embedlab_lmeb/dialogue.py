"""``lmeb-dialogue``: generated long-horizon dialogue memory in LMEB's format and protocol.

``conversations`` conversations (scenes) of ``sessions`` dated sessions each; a session (one
document) is ``turns`` alternating user/assistant small-talk turns with the session date on top. Facts
about the user are planted in random turns of random sessions, and each becomes one query whose
relevant document is the session holding the answer. Query types (LMEB's dialogue subsets):

* ``single-hop``: "By the way, my sister Vera lives in Oslo." / "Where does the user's sister Vera live?";
* ``temporal``: a session dated 2023-05-14 where "Today I went hiking with my cousin." /
  "What did the user do on 2023-05-14?" (the date and the event are in different turns);
* ``knowledge-update``: "My favourite dessert is tiramisu." in an earlier session, then "Actually, my
  favourite dessert is now baklava." in a later one / "What is the user's favourite dessert now?":
  only the later session is relevant (the earlier one is a distractor that matches as well).

Each query may return only its conversation's sessions (the scene candidates). Document ids are
``dialogue_conv{c}_s{s}``, query ids ``dialogue_conv{c}_q{i}``: LMEB's scene rule (the query id's
first two ``_`` parts) maps each query to its conversation.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError

SMALL_TALK = (
    ("How was your day?", "It was fine, thanks for asking. Anything on your mind?"),
    ("The weather has been strange lately.", "Yes, it changes quickly this time of year."),
    ("I need to buy groceries later.", "Making a list usually helps you not forget anything."),
    ("Work was busy this week.", "Busy weeks can be tiring; remember to take breaks."),
    ("I watched a documentary about whales.", "Whales are fascinating; some sing for hours."),
    ("My phone battery keeps dying.", "Lowering the screen brightness can help a little."),
    ("I am thinking about learning a language.", "Practising a little every day works well."),
    ("The train was late again.", "Delays are annoying; maybe an earlier train helps."),
    ("I cleaned the whole flat today.", "That must feel good once it is done."),
    ("I could not sleep well last night.", "A calm routine before bed can make a difference."),
    ("Any idea for a weekend plan?", "A walk somewhere green is always a good start."),
    ("I tried a new recipe yesterday.", "Cooking something new is a nice way to relax."),
)
RELATIVES = ("sister", "brother", "cousin", "aunt", "uncle", "friend", "neighbour", "colleague")
NAMES = ("Vera", "Oskar", "Mira", "Felix", "Nora", "Anton", "Greta", "Silas", "Linnea", "Bruno", "Juno", "Igor")
CITIES = ("Oslo", "Lisbon", "Kyoto", "Tallinn", "Cusco", "Halifax", "Bergen", "Trieste")
ACTIVITIES = ("went hiking", "visited a museum", "baked bread", "went sailing", "played chess",
              "painted a fence", "went to a concert", "planted tomatoes")
COMPANIONS = ("my cousin", "an old friend", "my neighbour", "my colleagues", "my parents", "nobody at all")
FAVOURITES = {"dessert": ("tiramisu", "baklava", "cheesecake", "mochi", "flan", "pavlova"),
              "band": ("the Beatles", "Radiohead", "ABBA", "Queen", "Daft Punk", "the Cure"),
              "sport": ("tennis", "rowing", "climbing", "cycling", "fencing", "judo")}
KINDS = ("single-hop", "temporal", "knowledge-update")


def _count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"lmeb-dialogue: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _planter(planted: list[list[tuple[int, str]]], user_turns: int, rng: np.random.Generator):  # type: ignore[no-untyped-def]
    """``plant(session, sentence)``: put a fact in a free user turn of one session."""
    def plant(session: int, sentence: str) -> None:
        free = sorted(set(range(user_turns)) - {t for t, _ in planted[session]})
        planted[session].append((int(rng.choice(free)), sentence))
    return plant


def lmeb_dialogue(*, conversations: int = 20, sessions: int = 8, turns: int = 32, queries_per_kind: int = 2,
                  seed: int = 0) -> Dataset:
    """The generated dialogue-memory task (see the module docstring)."""
    _count("conversations", conversations, 1)
    _count("sessions", sessions, 2)
    _count("turns", turns, 6)
    _count("queries_per_kind", queries_per_kind, 1)
    if queries_per_kind > len(RELATIVES) or 3 * queries_per_kind > turns // 2:
        raise ConfigError(f"lmeb-dialogue: queries_per_kind={queries_per_kind} plants more facts than "
                          f"{len(RELATIVES)} relatives or {turns // 2} user turns per session allow")
    rng = np.random.default_rng([seed, 14])
    doc_ids, texts, query_ids, questions, qrels, kinds, scenes = [], [], [], [], {}, {}, {}
    for c in range(conversations):
        scene = f"dialogue_conv{c}"
        start = dt.date(2023, 1, 2) + dt.timedelta(days=int(rng.integers(0, 300)))
        dates = [start + dt.timedelta(days=7 * s + int(rng.integers(0, 5))) for s in range(sessions)]
        talk = [[SMALL_TALK[i] for i in rng.integers(0, len(SMALL_TALK), turns // 2).tolist()]
                for _ in range(sessions)]
        planted: list[list[tuple[int, str]]] = [[] for _ in range(sessions)]  # (user turn, sentence)
        asked: list[tuple[str, str, int]] = []  # (kind, question, session)
        plant = _planter(planted, turns // 2, rng)
        relatives = rng.permutation(len(RELATIVES))[:queries_per_kind]
        for r in relatives.tolist():
            session, name, city = int(rng.integers(sessions)), rng.choice(NAMES), rng.choice(CITIES)
            plant(session, f"By the way, my {RELATIVES[r]} {name} lives in {city}.")
            asked.append(("single-hop", f"Where does the user's {RELATIVES[r]} {name} live?", session))
        for session in rng.choice(sessions, size=queries_per_kind, replace=False).tolist():
            plant(session, f"Today I {rng.choice(ACTIVITIES)} with {rng.choice(COMPANIONS)}.")
            asked.append(("temporal", f"What did the user do on {dates[session].isoformat()}?", session))
        for topic in rng.permutation(sorted(FAVOURITES))[:queries_per_kind].tolist():
            old, new = rng.choice(FAVOURITES[topic], size=2, replace=False).tolist()
            first, later = sorted(rng.choice(sessions, size=2, replace=False).tolist())
            plant(first, f"My favourite {topic} is {old}.")
            plant(later, f"Actually, my favourite {topic} is now {new}.")
            asked.append(("knowledge-update", f"What is the user's favourite {topic} now?", later))
        for s in range(sessions):
            lines = [f"Session date: {dates[s].isoformat()}"]
            facts = dict(planted[s])
            for t, (user, assistant) in enumerate(talk[s]):
                lines.append(f"User: {facts[t]} {user}" if t in facts else f"User: {user}")
                lines.append(f"Assistant: {assistant}")
            doc_ids.append(f"{scene}_s{s}")
            texts.append("\n".join(lines))
        scenes[scene] = [f"{scene}_s{s}" for s in range(sessions)]
        for i, (kind, question, session) in enumerate(asked):
            query_id = f"{scene}_q{i}"
            query_ids.append(query_id)
            questions.append(question)
            qrels[query_id] = {f"{scene}_s{session}": 1}
            kinds[query_id] = kind
    everything = set(doc_ids)
    exclude = {q: sorted(everything - set(scenes["_".join(q.split("_")[:2])])) for q in query_ids}
    return Dataset("lmeb-dialogue", Corpus(doc_ids, texts), Queries(query_ids, questions), {"test": qrels},
                   metadata={"query_kinds": kinds, "scenes": scenes, "seed": seed}, exclude={"test": exclude})
