"""Built-in words of the synthetic tasks: person names, needle facts and the haystack prose.

Names are a first name and a surname from two fixed lists (every pair distinct). Needle facts are
"fact / question" templates filled with distinctive words, so that each question names its fact and
no other. The needle haystack is real English prose that every machine has: the docstrings of a
fixed list of Python standard-library modules, cut into sentences by the core's splitter.
"""

from __future__ import annotations

import importlib
import inspect
import re
from functools import lru_cache

from embedlab.segmentation import sentence_spans

FIRST_NAMES = (
    "Ada", "Alma", "Anton", "Aurora", "Basil", "Beatrix", "Bruno", "Cecilia", "Cyrus", "Dagny", "Dorian",
    "Edith", "Elio", "Esme", "Felix", "Flora", "Gideon", "Greta", "Hector", "Hilde", "Igor", "Imogen",
    "Jasper", "Juno", "Kasimir", "Klara", "Leander", "Linnea", "Magnus", "Mira", "Nikolai", "Nora",
    "Oskar", "Ottilie", "Percival", "Petra", "Quentin", "Rosalind", "Rufus", "Sabine", "Silas", "Tamsin",
    "Tobias", "Ursula", "Valentin", "Vera", "Wilhelmina", "Xavier", "Yara", "Zeno",
)
SURNAMES = (
    "Abernathy", "Bellweather", "Blackwood", "Castellano", "Delacroix", "Eriksen", "Fairbanks", "Galloway",
    "Hargreaves", "Ivanova", "Jablonski", "Kowalczyk", "Lindqvist", "Montgomery", "Nakamura", "Oyelaran",
    "Pemberton", "Quintero", "Rasmussen", "Sandoval", "Thornbury", "Underwood", "Valkonen", "Whitcombe",
    "Xenakis", "Yilmaz", "Zabrowski", "Ashcombe", "Brannigan", "Cartwright", "Dunmore", "Everhart",
    "Fitzroy", "Grimaldi", "Holloway", "Ingersoll", "Jovanovic", "Kingsley", "Larkspur", "Merriweather",
)

CITIES = (
    "Lisbon", "Oslo", "Kyoto", "Valparaiso", "Tbilisi", "Reykjavik", "Marrakesh", "Hobart", "Tallinn", "Cusco",
    "Zanzibar", "Ljubljana", "Halifax", "Bergen", "Salzburg", "Montevideo", "Tromso", "Cartagena", "Dubrovnik",
    "Antigua", "Windhoek", "Kotor", "Mendoza", "Trieste", "Galway",
)
THINGS = (
    ("bronze", "owl", "statue"), ("glass", "whale", "fountain"), ("copper", "dragon", "weathervane"),
    ("marble", "lion", "bench"), ("silver", "heron", "clock"), ("wooden", "fox", "carousel"),
    ("granite", "bear", "bridge"), ("jade", "tortoise", "lantern"),
)
FOODS = ("soup", "pie", "stew", "bread", "dumplings", "cake", "curry", "noodles")
SPICES = ("saffron", "cardamom", "sumac", "juniper", "star anise", "smoked paprika", "fenugreek", "long pepper")
ACTIVITIES = (
    "rowing across the harbour at dawn", "reading in the old tram depot", "eating figs on the lighthouse steps",
    "listening to the cellists in the fish market", "climbing the clock tower at noon",
    "feeding the swans behind the opera house", "drinking cocoa in the botanical glasshouse",
    "sketching the fishing boats from the pier",
)

#: Modules whose docstrings make the needle haystack (fixed, so the prose is the same on every run).
HAYSTACK_MODULES = (
    "argparse", "asyncio", "calendar", "collections", "concurrent.futures", "contextlib", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "email", "enum", "fractions", "functools", "gettext", "heapq", "html",
    "http.client", "inspect", "ipaddress", "itertools", "json", "logging", "mailbox", "multiprocessing",
    "numbers", "operator", "optparse", "pathlib", "pickle", "pprint", "queue", "random", "re", "sched",
    "selectors", "shlex", "shutil", "smtplib", "socket", "sqlite3", "statistics", "string", "subprocess",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize", "traceback", "typing", "unittest",
    "urllib.parse", "uuid", "warnings", "weakref", "xml.dom.minidom", "zipfile",
)
_PROSE = re.compile(r"^[A-Z][A-Za-z0-9 ,;:'()\-]+[.]$")


def person_names(count: int, rng) -> list[str]:  # type: ignore[no-untyped-def]
    """``count`` distinct "First Surname" names in random order (at most 2,000)."""
    total = len(FIRST_NAMES) * len(SURNAMES)
    if count > total:
        raise ValueError(f"at most {total} distinct names, asked for {count}")
    picks = rng.choice(total, size=count, replace=False)
    return [f"{FIRST_NAMES[i // len(SURNAMES)]} {SURNAMES[i % len(SURNAMES)]}" for i in picks.tolist()]


def needle_facts() -> list[tuple[str, str]]:
    """(fact, question) pairs, each question answered by its own fact only (200 of them)."""
    facts = []
    for i, city in enumerate(CITIES):
        material, animal, thing = THINGS[i % len(THINGS)]
        first, surname = FIRST_NAMES[i], SURNAMES[i]
        facts.append((f"The {material} {animal} {thing} in {city} was made by {first} {surname}.",
                      f"Who made the {material} {animal} {thing} in {city}?"))
        food, spice = FOODS[i % len(FOODS)], SPICES[(i * 3) % len(SPICES)]
        facts.append((f"The secret ingredient of the famous {food} of {city} is {spice}.",
                      f"What is the secret ingredient of the famous {food} of {city}?"))
        activity = ACTIVITIES[(i * 5) % len(ACTIVITIES)]
        facts.append((f"The best thing to do in {city} is {activity}.",
                      f"What is the best thing to do in {city}?"))
        year = 1850 + 7 * i
        facts.append((f"The first public library of {city} opened in {year} with {40 + 3 * i} books.",
                      f"When did the first public library of {city} open?"))
        other = FIRST_NAMES[-1 - i]
        facts.append((f"{other} {SURNAMES[-1 - i]} keeps a {THINGS[(i + 3) % len(THINGS)][1]} named "
                      f"{SURNAMES[(i + 7) % len(SURNAMES)]} in {city}.",
                      f"What is the name of the {THINGS[(i + 3) % len(THINGS)][1]} that "
                      f"{other} {SURNAMES[-1 - i]} keeps?"))
        facts.append((f"{city} holds its lantern festival every year on the {_ordinal(i + 3)} of {_MONTHS[i % 12]}.",
                      f"When does {city} hold its lantern festival?"))
        facts.append((f"The tallest tree in {city} is a {_TREES[i % len(_TREES)]} planted by a sailor.",
                      f"What kind of tree is the tallest tree in {city}?"))
        facts.append((f"The oldest bakery in {city} sells {FOODS[(i + 2) % len(FOODS)]} with "
                      f"{SPICES[(i + 5) % len(SPICES)]} on Sundays.",
                      f"What does the oldest bakery in {city} sell on Sundays?"))
    return facts


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")
_TREES = ("cedar", "sequoia", "baobab", "ginkgo", "linden", "cypress", "eucalyptus")


@lru_cache(maxsize=1)
def haystack_sentences() -> tuple[str, ...]:
    """Prose sentences (6 to 40 words, letters and simple punctuation only) from the docstrings of
    :data:`HAYSTACK_MODULES` and their public members (not submodules), sorted and distinct."""
    found: set[str] = set()
    for name in HAYSTACK_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:  # a module missing from a trimmed Python build: use the others
            continue
        members = [getattr(module, m, None) for m in sorted(getattr(module, "__all__", None) or dir(module))
                   if not m.startswith("_")]
        # submodules are skipped: which of them are attributes depends on what else was imported
        docs = [module.__doc__ or ""] + [inspect.getdoc(m) or "" for m in members if not inspect.ismodule(m)]
        for doc in docs:
            text = " ".join(doc.split())
            for a, b in sentence_spans(text):
                sentence = text[a:b]
                if 6 <= len(sentence.split()) <= 40 and _PROSE.match(sentence):
                    found.add(sentence)
    return tuple(sorted(found))
