"""A rooted tree over string node ids: the taxonomy behind hierarchical metrics.

Used for the generated data's taxonomy and for the ImageNet/WordNet hierarchy alike.
``leaves`` fixes the order of leaf indices used by classifiers and metrics.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class Tree:
    """Rooted tree.

    Attributes:
        parent: node id -> parent id (``None`` for the single root).
        names: node id -> human-readable name (class name used in prompts).
        leaves: leaf node ids in class-index order; defaults to sorted leaves.
    """

    parent: dict[str, str | None]
    names: dict[str, str] = field(default_factory=dict)
    leaves: list[str] = field(default_factory=list)

    def __post_init__(self):
        roots = [n for n, p in self.parent.items() if p is None]
        if len(roots) != 1:
            raise ValueError(f"a tree needs exactly one root (parent None), found {len(roots)}: {roots[:5]}")
        unknown = sorted({p for p in self.parent.values() if p is not None} - set(self.parent))
        if unknown:
            raise ValueError(f"parent ids not in the tree: {unknown[:5]}")
        true_leaves = set(self.parent) - {p for p in self.parent.values() if p is not None}
        if not self.leaves:
            object.__setattr__(self, "leaves", sorted(true_leaves))
        elif set(self.leaves) != true_leaves:
            extra = sorted(set(self.leaves) - true_leaves)[:5]
            missing = sorted(true_leaves - set(self.leaves))[:5]
            raise ValueError(f"leaves do not match the tree's leaves: not leaves {extra}, missing {missing}")
        for node in self.parent:  # detects cycles
            self.ancestors(node)

    @cached_property
    def root(self) -> str:
        return next(n for n, p in self.parent.items() if p is None)

    @cached_property
    def children(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {n: [] for n in self.parent}
        for node, par in self.parent.items():
            if par is not None:
                out[par].append(node)
        return out

    def ancestors(self, node: str, include_self: bool = False) -> list[str]:
        """Ancestors of ``node`` from its parent up to the root (``node`` first if asked)."""
        if node not in self.parent:
            raise KeyError(f"node {node!r} is not in the tree")
        chain = [node] if include_self else []
        cur = self.parent[node]
        while cur is not None:
            chain.append(cur)
            if len(chain) > len(self.parent):
                raise ValueError(f"cycle in the tree through {node!r}")
            cur = self.parent[cur]
        return chain

    def depth(self, node: str) -> int:
        """Number of edges from the root to ``node``."""
        return len(self.ancestors(node))

    def name(self, node: str) -> str:
        return self.names.get(node, node)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(
            {"parent": self.parent, "names": self.names, "leaves": self.leaves}, indent=1, sort_keys=True))

    @classmethod
    def from_json(cls, path: str | Path) -> Tree:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tree file not found: {path}")
        raw = json.loads(path.read_text())
        for key in ("parent",):
            if key not in raw:
                raise ValueError(f"tree file {path} lacks the key {key!r}")
        return cls(parent=raw["parent"], names=raw.get("names", {}), leaves=raw.get("leaves", []))
