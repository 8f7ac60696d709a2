"""Scenes of the generated world: sample 1-4 objects, lay them out, render image + boxes.

Conventions:
    * Layout cells are disjoint squares/rectangles of the unit canvas separated by a gap, and each
      object's rotated frame fits inside its cell, so "left of" (``a.x1 <= b.x0``) and "above"
      (``a.y1 <= b.y0``) hold strictly between objects in separated cells.
    * Objects are listed in reading order of their cells (top row first, left to right).
    * A scene's json (what a shard stores) holds ``objects`` [{label, colour, box}],
      ``background`` and ``boxes`` (objects and their parts and sub-parts).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from . import draw
from .shapes import DRAWERS
from .taxonomy import BACKGROUNDS, RGB, colours, leaves, with_article

GAP = 0.04


@dataclass
class Obj:
    leaf: str
    colour: str
    box: list[float]
    parts: list[dict] = field(default_factory=list)  # {"id","name","box","colour","sub": [{"name","box","colour"}]}


@dataclass
class Scene:
    objects: list[Obj]
    background: str
    size: int


def layout(rng: np.random.Generator, n: int) -> list[tuple[float, float, float, float]]:
    """Cells ``(x0, y0, x1, y1)`` in unit coordinates for ``n`` objects, reading order."""
    m, g = 0.03, GAP / 2
    if n == 1:
        return [(m, m, 1 - m, 1 - m)]
    if n == 2:
        if rng.random() < 0.5:
            return [(m, m, 0.5 - g, 1 - m), (0.5 + g, m, 1 - m, 1 - m)]
        return [(m, m, 1 - m, 0.5 - g), (m, 0.5 + g, 1 - m, 1 - m)]
    if n == 3:
        if rng.random() < 0.5:
            a, b = 1 / 3 - g, 1 / 3 + g
            c, d = 2 / 3 - g, 2 / 3 + g
            return [(m, m, a, 1 - m), (b, m, c, 1 - m), (d, m, 1 - m, 1 - m)]
        return [(m, m, 0.5 - g, 0.5 - g), (0.5 + g, m, 1 - m, 0.5 - g), (0.25, 0.5 + g, 0.75, 1 - m)]
    if n == 4:
        return [(m, m, 0.5 - g, 0.5 - g), (0.5 + g, m, 1 - m, 0.5 - g),
                (m, 0.5 + g, 0.5 - g, 1 - m), (0.5 + g, 0.5 + g, 1 - m, 1 - m)]
    raise ValueError(f"scenes hold 1-4 objects, asked for {n}")


def sample_pairs(rng, n: int, forbid=frozenset(), leaf_pool=None) -> list[tuple[str, str]]:
    """``n`` (leaf, colour) pairs avoiding the ``forbid`` set of (colour, leaf)."""
    lv, cs = leaf_pool or leaves(), colours()
    out = []
    while len(out) < n:
        leaf, col = lv[rng.integers(len(lv))], cs[rng.integers(len(cs))]
        if (col, leaf) not in forbid:
            out.append((leaf, col))
    return out


def _parts(shapes_px, ss, size, colour):
    groups: dict[str, list] = {}
    for pid, col, pts in shapes_px:
        if pid:
            groups.setdefault(pid, []).append((col, pts))
    tops = [p for p in groups if "/" not in p]
    parts = []
    for top in tops:
        pts = [p for k, v in groups.items() if k == top or k.startswith(top + "/") for _, p in v]
        part = {"id": top, "name": top.split(":")[0], "box": draw.bbox([p / ss for p in pts], size),
                "colour": draw.colour_word(groups[top][0][0], colour), "sub": []}
        for k, v in groups.items():
            if k.startswith(top + "/"):
                part["sub"].append({"name": k.split("/", 1)[1], "box": draw.bbox([p / ss for _, p in v], size),
                                    "colour": draw.colour_word(v[0][0], colour)})
        parts.append(part)
    return parts


def render(pairs, background: str, size: int, rng, *, ss: int = 2, scale=(0.8, 1.0),
           max_rot: float = 0.2, cells=None) -> tuple[np.ndarray, Scene]:
    """Draw ``pairs`` [(leaf, colour)] on a ``background``; returns (uint8 (size,size,3), Scene)."""
    n_px = size * ss
    canvas = Image.fromarray(draw.background(background, n_px, rng))
    cells = cells or layout(rng, len(pairs))
    objs = []
    for (leaf, colour), cell in zip(pairs, cells):
        aspect, shapes = DRAWERS[leaf](rng)
        angle = rng.uniform(-max_rot, max_rot)
        cw, ch = (cell[2] - cell[0]) * n_px, (cell[3] - cell[1]) * n_px
        height = draw.fit_height(aspect, angle, cw, ch) * rng.uniform(*scale)
        c, s = abs(np.cos(angle)), abs(np.sin(angle))
        half_w, half_h = height * (aspect * c + s) / 2, height * (aspect * s + c) / 2
        cx = rng.uniform(cell[0] * n_px + half_w, cell[2] * n_px - half_w)
        cy = rng.uniform(cell[1] * n_px + half_h, cell[3] * n_px - half_h)
        px = draw.to_pixels(shapes, aspect, height, cx, cy, angle)
        rgb = np.asarray(RGB[colour]) + rng.integers(-18, 19, 3)
        draw.paint(canvas, px, rgb)
        box = draw.bbox([p / ss for _, _, p in px], size)
        objs.append(Obj(leaf, colour, box, _parts(px, ss, size, colour)))
    img = canvas.reduce(ss) if ss > 1 else canvas
    return np.asarray(img, dtype=np.uint8), Scene(objs, background, size)


def random_scene(rng, size: int, forbid=frozenset(), n_weights=(0.4, 0.3, 0.2, 0.1), ss: int = 2):
    """A training-style scene: 1-4 objects (weights), random background."""
    n = 1 + int(rng.choice(len(n_weights), p=np.asarray(n_weights) / np.sum(n_weights)))
    bg = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    return render(sample_pairs(rng, n, forbid), bg, size, rng, ss=ss)


def look_alike_scene(rng, size: int, colour: str, background: str, forbid=frozenset(), ss: int = 2):
    """One object of a random leaf in ``colour`` on ``background`` (a leaf paired with
    ``colour`` in ``forbid`` is never drawn). A block of these differs only in shape, so
    colour and background cannot tell its captions apart."""
    pool = [leaf for leaf in leaves() if (colour, leaf) not in forbid]
    return render([(pool[rng.integers(len(pool))], colour)], background, size, rng, ss=ss)


def random_look(rng) -> tuple[str, str]:
    """A (colour, background) pair drawn uniformly."""
    cs, bgs = colours(), list(BACKGROUNDS)
    return cs[rng.integers(len(cs))], bgs[rng.integers(len(bgs))]


def block_look(rng, look_alike: float) -> tuple[str, str] | None:
    """What a block of scenes shares: with probability ``look_alike`` a (colour, background)
    pair (:func:`random_look`), else None (independent random scenes)."""
    return random_look(rng) if rng.random() < look_alike else None


def block_scene(rng, size: int, look: tuple[str, str] | None, forbid=frozenset(),
                n_weights=(0.4, 0.3, 0.2, 0.1), ss: int = 2):
    """One scene of a block: :func:`look_alike_scene` in ``look``, or :func:`random_scene` when None."""
    if look is None:
        return random_scene(rng, size, forbid, n_weights, ss)
    return look_alike_scene(rng, size, *look, forbid, ss)


def box_records(scene: Scene, *, colour: bool = True) -> list[dict]:
    """Boxes for the shard json: each object, then its parts and sub-parts; their phrases name
    the colour unless ``colour`` is False ("a red car" / "a car")."""
    def phrase(col: str, name: str) -> str:
        return with_article(f"{col} {name}" if colour else name)

    out = []
    for i, o in enumerate(scene.objects):
        out.append({"box": o.box, "phrase": phrase(o.colour, o.leaf), "kind": "object",
                    "label": o.leaf, "object": i})
        for p in o.parts:
            out.append({"box": p["box"], "phrase": phrase(p["colour"], p["name"]), "kind": "part",
                        "label": o.leaf, "object": i, "part": p["name"]})
            for sp in p["sub"]:
                out.append({"box": sp["box"], "phrase": phrase(sp["colour"], sp["name"]),
                            "kind": "part", "label": o.leaf, "object": i, "part": f"{p['name']}/{sp['name']}"})
    return out
