"""The generated world's vocabularies: an object taxonomy, a colour taxonomy, backgrounds.

Conventions:
    * Node ids are the lowercase English names used in captions ("pine tree", "road vehicle");
      the object tree is ``entity -> supercategory -> basic category -> leaf`` (3 edges deep,
      5 x 2 x 3 = 30 leaves), the colour tree ``colour -> group -> colour``.
    * Leaf order (class index order everywhere) is the order of :data:`OBJECTS` below.
    * Held-out attribute-object pairs are (colour, leaf) tuples drawn by :func:`heldout_pairs`.
"""
from __future__ import annotations

from functools import cache

import numpy as np

from ..tree import Tree

OBJECTS: dict[str, dict[str, list[str]]] = {
    "vehicle": {"road vehicle": ["car", "truck", "bus"],
                "aircraft": ["airplane", "helicopter", "rocket"]},
    "plant": {"tree": ["pine tree", "oak tree", "palm tree"],
              "small plant": ["tulip", "daisy", "cactus"]},
    "building": {"dwelling": ["house", "tent", "igloo"],
                 "tower": ["castle tower", "lighthouse", "skyscraper"]},
    "animal": {"sea animal": ["fish", "jellyfish", "crab"],
               "land animal": ["snail", "turtle", "spider"]},
    "household object": {"piece of furniture": ["chair", "table", "lamp"],
                         "container": ["cup", "bottle", "teapot"]},
}

COLOUR_GROUPS: dict[str, list[str]] = {
    "warm colour": ["red", "orange", "yellow", "pink"],
    "cool colour": ["green", "blue", "purple"],
    "neutral colour": ["brown", "white", "gray", "black"],
}

RGB: dict[str, tuple[int, int, int]] = {
    "red": (205, 35, 35), "orange": (245, 135, 20), "yellow": (240, 210, 35), "pink": (245, 125, 185),
    "green": (45, 165, 55), "blue": (35, 75, 215), "purple": (135, 55, 185),
    "brown": (125, 75, 35), "white": (246, 246, 246), "gray": (130, 130, 130), "black": (28, 28, 28),
}

BACKGROUNDS: dict[str, str] = {  # background id -> caption phrase
    "grass": "on grass", "sand": "on sand", "sky": "in the sky", "water": "on water",
    "snow": "on snow", "wall": "by a brick wall", "night": "at night",
}

RELATIONS = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """``"orange car"`` -> ``"an orange car"``."""
    return f"{_article(phrase)} {phrase}"


@cache
def object_tree() -> Tree:
    parent: dict[str, str | None] = {"entity": None}
    leaves = []
    for sup, basics in OBJECTS.items():
        parent[sup] = "entity"
        for basic, lvs in basics.items():
            parent[basic] = sup
            for leaf in lvs:
                parent[leaf] = basic
                leaves.append(leaf)
    return Tree(parent=parent, names={n: n for n in parent}, leaves=leaves)


@cache
def colour_tree() -> Tree:
    parent: dict[str, str | None] = {"colour": None}
    for group, cols in COLOUR_GROUPS.items():
        parent[group] = "colour"
        for c in cols:
            parent[c] = group
    return Tree(parent=parent, names={n: n for n in parent}, leaves=[c for cs in COLOUR_GROUPS.values() for c in cs])


def leaves() -> list[str]:
    return list(object_tree().leaves)


def colours() -> list[str]:
    return list(colour_tree().leaves)


@cache
def _ancestors_or_self(tree_name: str, node: str) -> frozenset:
    tree = object_tree() if tree_name == "object" else colour_tree()
    return frozenset(tree.ancestors(node, include_self=True))


def is_a(leaf: str, category: str) -> bool:
    """True when object ``leaf`` is ``category`` or below it."""
    return category in _ancestors_or_self("object", leaf)


def colour_is(colour: str, group: str) -> bool:
    return group in _ancestors_or_self("colour", colour)


def level_name(leaf: str, level: int) -> str:
    """Category of ``leaf`` at depth ``level`` (1 = supercategory, 2 = basic, 3 = leaf)."""
    chain = object_tree().ancestors(leaf, include_self=True)[::-1]  # root .. leaf
    return chain[level]


def heldout_pairs(seed: int) -> list[tuple[str, str]]:
    """One held-out colour per leaf, (colour, leaf), chosen so every colour is held out for some
    leaves and every leaf keeps 10 training colours."""
    rng = np.random.default_rng([seed, 99])
    cols = colours()
    order = rng.permutation(len(cols))
    return [(cols[order[i % len(cols)]], leaf) for i, leaf in enumerate(leaves())]
