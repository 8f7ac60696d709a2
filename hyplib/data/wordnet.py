"""The ImageNet-1k WordNet hierarchy as a :class:`hyplib.tree.Tree`, without WordNet at run time.

``imagenet_tree()`` reads the committed ``imagenet_tree.json`` (1,372 nodes, root
``physical_entity`` = ``n00001930``, the 1,000 classes exactly the leaves, in ImageNet
class-index order; names are open_clip's class names for leaves, WordNet lemmas otherwise).
``scripts/build_imagenet_tree.py`` rebuilds the file from WordNet 3.0 and documents the path rule.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..tree import Tree

TREE_FILE = Path(__file__).with_name("imagenet_tree.json")


@lru_cache(maxsize=1)
def imagenet_tree() -> Tree:
    """The HyCoCLIP-style ImageNet hierarchy (see the module docstring)."""
    return Tree.from_json(TREE_FILE)


def imagenet_wnids() -> list[str]:
    """The 1,000 ImageNet class wnids in class-index order."""
    return list(imagenet_tree().leaves)
