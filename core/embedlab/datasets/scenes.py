"""``scenes``: a seeded generator of synthetic scenes for composed image retrieval (numpy only).

A scene is a small RGB canvas with ``objects`` shapes (square, circle, triangle), each with a
colour, a size (small, large) and a quadrant (top left ... bottom right), drawn with a pixel of
jitter. Every image carries a caption ("a large red square at the top left and a small blue
circle at the bottom right", corpus attribute ``caption``) and the split it belongs to
(attribute ``split``).

A query is a reference scene plus a modification instruction that changes one attribute of one
object: its colour ("turn the red square blue"), its shape ("make the red square a circle") or
its size ("make the red square small"). The relevant document is the reference scene with that
change applied. For every query the corpus also holds the reference (excluded from the query's
ranking, as in CIRR's protocol) and ``distractors`` other one-attribute edits of the same
reference, so neither the image alone nor the instruction alone identifies the target.

Zero-shot split: ``heldout`` (colour, shape) combinations never appear in a training image; the
queries of ``test-unseen`` produce a target that contains one of them, those of ``test-seen``
only combinations seen in training (on new scenes). Splits: ``train``, ``test-seen``,
``test-unseen``.
"""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from embedlab.dataset import Corpus, Dataset, Queries
from embedlab.errors import ConfigError
from embedlab.media import Image

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40), "green": (40, 200, 60), "blue": (50, 80, 235),
    "yellow": (235, 220, 40), "purple": (160, 60, 200), "white": (240, 240, 240),
}
SHAPES = ("square", "circle", "triangle")
SIZES = ("small", "large")
PLACES = ("top left", "top right", "bottom left", "bottom right")
BACKGROUND = 40


@attrs.frozen
class Thing:
    """One object of a scene."""

    shape: str
    colour: str
    size: str
    place: int

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    def describe(self) -> str:
        return f"a {self.size} {self.colour} {self.shape} at the {PLACES[self.place]}"


def caption(scene: tuple[Thing, ...]) -> str:
    """The scene's caption, objects in quadrant order."""
    return " and ".join(t.describe() for t in sorted(scene, key=lambda t: t.place))


def _mask(shape: str, side: int) -> np.ndarray:
    y, x = np.mgrid[:side, :side] + 0.5
    if shape == "square":
        return np.ones((side, side), dtype=bool)
    if shape == "circle":
        return (x - side / 2) ** 2 + (y - side / 2) ** 2 <= (side / 2) ** 2
    return np.abs(x - side / 2) <= y / 2  # triangle, apex at the top


def render(scene: tuple[Thing, ...], size: int, rng: np.random.Generator) -> Image:
    """Draw ``scene`` on a ``size x size`` canvas (objects jittered by up to one pixel)."""
    canvas = np.full((size, size, 3), BACKGROUND, dtype=np.uint8)
    cell = size // 2
    for thing in scene:
        side = int(cell * (0.8 if thing.size == "large" else 0.45))
        row, col = divmod(thing.place, 2)
        top = row * cell + (cell - side) // 2 + int(rng.integers(-1, 2))
        left = col * cell + (cell - side) // 2 + int(rng.integers(-1, 2))
        top, left = min(max(top, 0), size - side), min(max(left, 0), size - side)
        canvas[top:top + side, left:left + side][_mask(thing.shape, side)] = COLOURS[thing.colour]
    return Image(canvas)


def edits(thing: Thing) -> list[tuple[Thing, str]]:
    """Every one-attribute change of ``thing`` with its instruction."""
    out = [(attrs.evolve(thing, colour=c), f"turn the {thing.name} {c}") for c in COLOURS if c != thing.colour]
    out += [(attrs.evolve(thing, shape=s), f"make the {thing.name} a {s}") for s in SHAPES if s != thing.shape]
    other = "small" if thing.size == "large" else "large"
    out.append((attrs.evolve(thing, size=other), f"make the {thing.name} {other}"))
    return out


def heldout_combinations(n: int, rng: np.random.Generator) -> set[tuple[str, str]]:
    """``n`` (colour, shape) pairs, at most one per colour, so every colour and shape stays seen."""
    if not 0 <= n <= len(COLOURS):
        raise ConfigError(f"scenes: heldout must lie in 0..{len(COLOURS)}, got {n}")
    colours = rng.permutation(list(COLOURS))[:n]
    return {(str(c), SHAPES[i % len(SHAPES)]) for i, c in enumerate(colours)}


def _random_scene(objects: int, rng: np.random.Generator) -> tuple[Thing, ...]:
    """Objects in distinct quadrants with distinct (colour, shape) names."""
    places = rng.permutation(len(PLACES))[:objects]
    things: list[Thing] = []
    while len(things) < objects:
        thing = Thing(SHAPES[rng.integers(len(SHAPES))], str(rng.choice(list(COLOURS))),
                      SIZES[rng.integers(len(SIZES))], int(places[len(things)]))
        if thing.name not in {t.name for t in things}:
            things.append(thing)
    return tuple(things)


def _combos(scene: tuple[Thing, ...]) -> set[tuple[str, str]]:
    return {(t.colour, t.shape) for t in scene}


@attrs.define
class _Builder:
    size: int
    rng: np.random.Generator
    ids: list[str] = attrs.field(factory=list)
    images: list[Image] = attrs.field(factory=list)
    captions: list[str] = attrs.field(factory=list)
    splits: list[str] = attrs.field(factory=list)

    def add(self, scene: tuple[Thing, ...], split: str) -> str:
        doc_id = f"img-{len(self.ids):06d}"
        self.ids.append(doc_id)
        self.images.append(render(scene, self.size, self.rng))
        self.captions.append(caption(scene))
        self.splits.append(split)
        return doc_id


def synthetic_scenes(n_train: int = 2000, n_test: int = 200, *, size: int = 32, objects: int = 2,
                     distractors: int = 3, heldout: int = 3, seed: int = 0) -> Dataset:
    """The ``scenes`` dataset: ``n_train`` training queries, ``n_test`` queries in each of
    ``test-seen`` and ``test-unseen`` (see the module docstring)."""
    if not 1 <= objects <= len(PLACES):
        raise ConfigError(f"scenes: objects must lie in 1..{len(PLACES)}, got {objects}")
    if size < 16 or n_train < 1 or n_test < 1 or distractors < 0:
        raise ConfigError("scenes: size >= 16, n_train >= 1, n_test >= 1 and distractors >= 0 are required")
    rng = np.random.default_rng(seed)
    held = heldout_combinations(heldout, rng)
    if heldout and not held:
        raise ConfigError("scenes: no held-out combinations drawn")
    builder = _Builder(size, rng)
    query_ids: list[str] = []
    texts: list[str] = []
    references: list[Image] = []
    qrels: dict[str, dict[str, dict[str, int]]] = {"train": {}, "test-seen": {}, "test-unseen": {}}
    exclude: dict[str, dict[str, list[str]]] = {s: {} for s in qrels}
    wanted = {"train": n_train, "test-seen": n_test, "test-unseen": n_test if held else 0}
    if not held:
        del qrels["test-unseen"], exclude["test-unseen"]
    for split, count in wanted.items():
        made = 0
        while made < count:
            scene = _random_scene(objects, rng)
            if _combos(scene) & held:
                continue  # references never hold an unseen combination
            which = int(rng.integers(objects))
            options = edits(scene[which])
            new_thing, instruction = options[int(rng.integers(len(options)))]
            target = tuple(new_thing if i == which else t for i, t in enumerate(scene))
            if len({t.name for t in target}) < objects:
                continue  # the edit made two objects share a name
            unseen = bool(_combos(target) & held)
            if unseen != (split == "test-unseen"):
                continue
            others = [t for t, _ in options if t != new_thing]
            picked = [others[i] for i in rng.permutation(len(others))[:distractors]]
            variants = [tuple(p if i == which else t for i, t in enumerate(scene)) for p in picked]
            if split == "train" and any(_combos(v) & held for v in variants):
                continue  # training images never show a held-out combination
            ref_id = builder.add(scene, split)
            target_id = builder.add(target, split)
            for variant in variants:
                builder.add(variant, split)
            query_id = f"q-{len(query_ids):06d}"
            query_ids.append(query_id)
            texts.append(instruction)
            references.append(builder.images[int(ref_id[4:])])
            qrels[split][query_id] = {target_id: 1}
            exclude[split][query_id] = [ref_id]
            made += 1
    corpus = Corpus(builder.ids, [""] * len(builder.ids),
                    attributes={"caption": np.array(builder.captions, dtype=object),
                                "split": np.array(builder.splits, dtype=object)},
                    images=builder.images)
    queries = Queries(query_ids, texts, images=references)
    metadata: dict[str, Any] = {"heldout": sorted(f"{c} {s}" for c, s in held), "size": size,
                                "objects": objects, "distractors": distractors, "seed": seed}
    return Dataset("scenes", corpus, queries, qrels, metadata, exclude)
