"""The ImageNet-1k WordNet hierarchy as a :class:`hyplib.tree.Tree`, without WordNet at run time.

``imagenet_tree()`` reads the committed ``imagenet_tree.json``: HyCoCLIP's published
hierarchy, edge for edge (``assets/imagenet_synset/imagenet_isa.txt`` of PalAvik/hycoclip,
which PHyCLIP's repository ships unchanged; 1,371 WordNet 3.0 is-a links), the tree their
TIE/LCA/J were computed on. 1,372 nodes, root ``physical_entity`` = ``n00001930``, the 1,000
classes exactly the leaves, in ImageNet class-index order; names are open_clip's class names
for leaves, WordNet lemmas otherwise. HyCoCLIP's ``all_ancestors_indices.pkl`` gives every
class the same ancestor set. ``scripts/build_imagenet_tree.py`` rebuilds the file from a copy
of the published edge list and states its provenance (URL, commit, SHA-256); the JSON keeps
the edge list's line order, so the published file's text is recovered from it exactly.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..tree import Tree

TREE_FILE = Path(__file__).with_name("imagenet_tree.json")


@lru_cache(maxsize=1)
def imagenet_tree() -> Tree:
    """HyCoCLIP's published ImageNet hierarchy (see the module docstring)."""
    return Tree.from_json(TREE_FILE)


def imagenet_wnids() -> list[str]:
    """The 1,000 ImageNet class wnids in class-index order."""
    return list(imagenet_tree().leaves)
