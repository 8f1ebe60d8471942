"""Built-in words of the ``limit-generated`` dataset: likeable attributes and person names.

Attributes are "Adjective Noun" phrases (``len(ADJECTIVES) * len(NOUNS)`` of them); names are made
of random syllables, so any number of distinct people can be generated without a name list.
"""

from __future__ import annotations

import itertools

import numpy as np

ADJECTIVES = (
    "Amber", "Ancient", "Arctic", "Autumn", "Baked", "Bamboo", "Blue", "Brass", "Bright", "Bronze",
    "Candied", "Carved", "Cedar", "Ceramic", "Classic", "Coastal", "Copper", "Coral", "Crimson", "Crispy",
    "Crystal", "Desert", "Electric", "Emerald", "Enchanted", "Fizzy", "Floral", "Foggy", "Folding", "Fried",
    "Frosted", "Garden", "Giant", "Glass", "Golden", "Granite", "Grilled", "Handmade", "Hidden", "Honeyed",
    "Icy", "Indigo", "Ivory", "Jade", "Knitted", "Lacquered", "Lavender", "Leather", "Lemon", "Linen",
    "Lunar", "Marble", "Midnight", "Minty", "Misty", "Mossy", "Mountain", "Neon", "Oaken", "Orange",
    "Painted", "Pearl", "Pickled", "Pine", "Polished", "Purple", "Quilted", "Rainy", "Roasted", "Rosy",
    "Rustic", "Rusty", "Salted", "Sandy", "Scarlet", "Silk", "Silver", "Smoked", "Snowy", "Solar",
    "Spicy", "Spotted", "Starry", "Steel", "Stormy", "Striped", "Sugared", "Summer", "Sunny", "Tangy",
    "Tiny", "Toasted", "Tropical", "Velvet", "Vintage", "Violet", "Wild", "Windy", "Wooden", "Woolen",
)

NOUNS = (
    "Accordions", "Almonds", "Anchors", "Apples", "Aquariums", "Armchairs", "Avalanches", "Backpacks", "Bagels",
    "Balloons", "Banjos", "Barges", "Baskets", "Beetles", "Bells", "Bicycles", "Biscuits", "Blankets", "Boots",
    "Bowls", "Bridges", "Buckets", "Buttons", "Cabins", "Cactuses", "Candles", "Canoes", "Carousels", "Castles",
    "Cathedrals", "Cellos", "Chandeliers", "Cheeses", "Cherries", "Chessboards", "Chimneys", "Clocks", "Clouds",
    "Comets", "Compasses", "Cookies", "Crabs", "Crayons", "Crickets", "Cupcakes", "Curtains",
    "Daisies", "Dolphins", "Doughnuts", "Dragonflies", "Drums", "Dumplings", "Eagles", "Easels", "Feathers",
    "Ferns", "Fireflies", "Flutes", "Fountains", "Foxes", "Geysers", "Glaciers", "Gloves", "Goblets",
    "Gondolas", "Guitars", "Hammocks", "Harbors", "Harps", "Hats", "Hedgehogs", "Helmets", "Hiking Trails",
    "Islands", "Jackets", "Jellyfish", "Kettles", "Kites", "Lagoons", "Lanterns", "Lighthouses", "Lilies",
    "Lizards", "Lollipops", "Mandolins", "Maps", "Meadows", "Mittens", "Mosaics", "Muffins", "Mushrooms",
    "Necklaces", "Noodles", "Notebooks", "Oars", "Orchards", "Otters", "Owls", "Pancakes", "Parrots", "Peaches",
    "Pebbles", "Pendants", "Pianos", "Pillows", "Pinecones", "Pretzels", "Puzzles", "Quilts", "Rafts",
    "Raincoats", "Ribbons", "Rivers", "Robots", "Saddles", "Sailboats", "Sandals", "Scarves", "Seashells",
    "Skateboards", "Sleds", "Snails", "Sneakers", "Soups", "Spoons", "Squirrels", "Statues", "Stools",
    "Submarines", "Sunflowers", "Sweaters", "Teacups", "Teapots", "Telescopes", "Tents", "Tortoises",
    "Trains", "Trumpets", "Tulips", "Turtles", "Umbrellas", "Vases", "Violins", "Volcanoes", "Waffles",
    "Wagons", "Walruses", "Waterfalls", "Whistles", "Windmills", "Yachts", "Zebras",
)

_ONSETS = ("b", "br", "c", "ch", "d", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "r", "s", "sh", "st",
           "t", "th", "v", "w", "z")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o", "ia", "ou")
_CODAS = ("", "", "", "", "", "l", "n", "r", "s", "nd")


def builtin_attributes() -> list[str]:
    """Every "Adjective Noun" attribute, in a fixed order."""
    return [f"{adjective} {noun}" for adjective, noun in itertools.product(ADJECTIVES, NOUNS)]


def _word(rng: np.random.Generator, syllables: int) -> str:
    parts = [_ONSETS[rng.integers(len(_ONSETS))] + _VOWELS[rng.integers(len(_VOWELS))]
             + _CODAS[rng.integers(len(_CODAS))] for _ in range(syllables)]
    return "".join(parts).capitalize()


def person_names(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct "First Last" names made of random syllables."""
    names: list[str] = []
    seen: set[str] = set()
    while len(names) < count:
        name = f"{_word(rng, 2)} {_word(rng, int(rng.integers(2, 4)))}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names
