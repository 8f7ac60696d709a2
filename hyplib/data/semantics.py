"""Structured descriptions of scenes and the truth test that keeps benchmarks honest.

A :class:`Desc` is what a caption says: object mentions (a taxonomy category, optionally a colour
or colour group), spatial relations between mentions, optionally the background. Every caption
the generator writes is rendered from a Desc, so truth is decidable by construction:
:func:`describes` finds an injective assignment of mentions to the scene's objects satisfying
every category, colour and relation (relations are strict on boxes: ``a`` left of ``b`` iff
``a.x1 <= b.x0``; ``a`` above ``b`` iff ``a.y1 <= b.y0``).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import permutations

from .scene import Scene
from .taxonomy import BACKGROUNDS, colour_is, is_a, with_article


@dataclass(frozen=True)
class Mention:
    category: str              # node of the object taxonomy
    colour: str | None = None  # node of the colour taxonomy, or unspecified

    def text(self) -> str:
        return with_article(f"{self.colour} {self.category}" if self.colour else self.category)


@dataclass(frozen=True)
class Desc:
    mentions: tuple[Mention, ...]
    relations: tuple[tuple[int, str, int], ...] = ()   # (mention i, relation, mention j)
    background: str | None = None

    def text(self) -> str:
        used, clauses = set(), []
        for i, rel, j in self.relations:
            clauses.append(f"{self.mentions[i].text()} {rel} {self.mentions[j].text()}")
            used |= {i, j}
        clauses += [m.text() for k, m in enumerate(self.mentions) if k not in used]
        body = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
        return f"{body} {BACKGROUNDS[self.background]}" if self.background else body

    def with_mention(self, k: int, m: Mention) -> Desc:
        ms = list(self.mentions)
        ms[k] = m
        return replace(self, mentions=tuple(ms))


def relation_holds(rel: str, a, b) -> bool:
    """Strict spatial relation between boxes ``a`` and ``b`` ([x0, y0, x1, y1])."""
    if rel == "left of":
        return a[2] <= b[0]
    if rel == "right of":
        return b[2] <= a[0]
    if rel == "above":
        return a[3] <= b[1]
    if rel == "below":
        return b[3] <= a[1]
    raise ValueError(f"unknown relation {rel!r}")


def _fits(m: Mention, obj) -> bool:
    return is_a(obj.leaf, m.category) and (m.colour is None or colour_is(obj.colour, m.colour))


def describes(desc: Desc, scene: Scene) -> bool:
    """True iff ``desc`` is a true description of ``scene`` (see the module docstring)."""
    if desc.background is not None and desc.background != scene.background:
        return False
    objs = scene.objects
    if len(desc.mentions) > len(objs):
        return False
    options = [[k for k, o in enumerate(objs) if _fits(m, o)] for m in desc.mentions]
    if any(not opt for opt in options):
        return False
    for assign in permutations(range(len(objs)), len(desc.mentions)):
        if all(assign[i] in options[i] for i in range(len(assign))) and all(
                relation_holds(r, objs[assign[i]].box, objs[assign[j]].box) for i, r, j in desc.relations):
            return True
    return False
