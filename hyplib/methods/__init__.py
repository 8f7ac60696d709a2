"""The six methods as one registry.

>>> from hyplib import methods
>>> m = methods.get("meru", entail_weight=0.1)
>>> m.geometry, m.uses_boxes
('lorentz', False)

``get(name, **overrides)`` returns a fresh :class:`~hyplib.methods.base.Method` whose
``defaults`` are the paper's, updated by ``overrides``; unknown names or keys raise
ValueError listing the valid ones. Callers ask the instance (``loss``, ``similarity``,
``distance_to_root``, ``lift``, ``space``) and never branch on its name.
"""
from __future__ import annotations

from hyplib.methods.argent import ARGENT
from hyplib.methods.atmg import ATMG
from hyplib.methods.base import Embeddings, Method
from hyplib.methods.clip import CLIP
from hyplib.methods.hycoclip import HyCoCLIP
from hyplib.methods.meru import MERU
from hyplib.methods.phyclip import PHyCLIP

__all__ = ["Embeddings", "Method", "REGISTRY", "get", "names"]

#: name -> Method subclass.
REGISTRY: dict[str, type[Method]] = {cls.name: cls for cls in (CLIP, MERU, HyCoCLIP, ATMG, ARGENT, PHyCLIP)}


def names() -> list[str]:
    """Registered method names, in the order of the papers' appearance."""
    return list(REGISTRY)


def get(name: str, **overrides) -> Method:
    """A configured instance of method ``name``; ``overrides`` update its paper defaults."""
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {names()}")
    return REGISTRY[name](**overrides)
