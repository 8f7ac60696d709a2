"""Procedural drawing: polygon primitives, object placement, backgrounds, rendering with boxes.

Conventions:
    * An object is drawn in *height units*: x in ``[0, aspect]``, y in ``[0, 1]``, y pointing
      down. Every primitive is a polygon ``(K, 2)`` so rotation and boxes are exact.
    * A shape is ``(part_id, colour, points)``; ``part_id`` is ``""`` (the object itself),
      ``"wheel:0"`` (a part; the name is before ``:``) or ``"wheel:0/hubcap"`` (a sub-part).
      ``colour`` is ``MAIN``/``DARK``/``LIGHT`` (derived from the object's colour) or a name in
      :data:`FIXED`.
    * Images are rendered at ``ss`` times the output size and box-filtered down (anti-aliasing);
      boxes are returned in output pixels, ``[x0, y0, x1, y1]`` clipped to the image.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw

MAIN, DARK, LIGHT = "main", "dark", "light"
FIXED = {"black": (25, 25, 25), "gray": (120, 120, 125), "white": (245, 245, 245),
         "glass": (165, 215, 245), "yellow": (250, 215, 40), "brown": (115, 70, 35),
         "green": (40, 140, 50), "red": (215, 40, 40), "orange": (240, 140, 30), "beige": (225, 200, 160)}


# ---- primitives (height units) ---------------------------------------------------------------
def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def poly(*pts):
    return np.array(pts, float)


def ellipse(cx, cy, rx, ry, n=20, a0=0.0, a1=2 * np.pi):
    t = np.linspace(a0, a1, n, endpoint=(a1 - a0) < 2 * np.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def circle(cx, cy, r, n=16):
    return ellipse(cx, cy, r, r, n)


def half_ellipse(cx, cy, rx, ry, n=16):
    """Upper half (y < cy) of an ellipse, closed by its diameter."""
    return ellipse(cx, cy, rx, ry, n, np.pi, 2 * np.pi)


def line(x0, y0, x1, y1, w):
    """A segment of width ``w`` as a quad."""
    d = np.array([x1 - x0, y1 - y0], float)
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-12) * w / 2  # 1e-12: zero-length segment
    return np.array([[x0, y0] + n, [x1, y1] + n, [x1, y1] - n, [x0, y0] - n])


def arc_band(cx, cy, r_out, r_in, a0, a1, n=12):
    """Thick circular arc (a handle) from angle ``a0`` to ``a1``."""
    t = np.linspace(a0, a1, n)
    outer = np.stack([cx + r_out * np.cos(t), cy + r_out * np.sin(t)], 1)
    inner = np.stack([cx + r_in * np.cos(t[::-1]), cy + r_in * np.sin(t[::-1])], 1)
    return np.concatenate([outer, inner])


def rotated(points, cx, cy, angle):
    c, s = np.cos(angle), np.sin(angle)
    p = points - [cx, cy]
    return np.stack([c * p[:, 0] - s * p[:, 1], s * p[:, 0] + c * p[:, 1]], 1) + [cx, cy]


# ---- colours -----------------------------------------------------------------------------------
def shade(spec, rgb) -> tuple[int, int, int]:
    base = np.asarray(rgb, float)
    if spec == MAIN:
        out = base
    elif spec == DARK:
        out = base * 0.55
    elif spec == LIGHT:
        out = base * 0.5 + 127.5
    else:
        out = np.asarray(FIXED[spec], float)
    return tuple(int(v) for v in np.clip(out, 0, 255))  # clip: jitter may leave [0, 255]


def colour_word(spec, colour: str) -> str:
    return {MAIN: colour, DARK: f"dark {colour}", LIGHT: f"light {colour}"}.get(spec, spec)


# ---- placement ---------------------------------------------------------------------------------
def fit_height(aspect: float, angle: float, cell_w: float, cell_h: float) -> float:
    """Largest object height whose rotated ``aspect x 1`` rectangle fits a ``cell_w x cell_h`` cell."""
    c, s = abs(np.cos(angle)), abs(np.sin(angle))
    return min(cell_w / (aspect * c + s), cell_h / (aspect * s + c))


def to_pixels(shapes, aspect, height, cx, cy, angle):
    """Height units -> canvas pixels: centre the ``aspect x 1`` frame on (cx, cy), scale, rotate."""
    pts = np.concatenate([s[2] for s in shapes])
    c, s = np.cos(angle) * height, np.sin(angle) * height
    x, y = pts[:, 0] - aspect / 2, pts[:, 1] - 0.5
    moved = np.stack([c * x - s * y + cx, s * x + c * y + cy], 1)
    ends = np.cumsum([len(sh[2]) for sh in shapes])[:-1]
    return [(part, col, p) for (part, col, _), p in zip(shapes, np.split(moved, ends))]


def bbox(points_list, size) -> list[float]:
    pts = np.concatenate(points_list)
    (x0, y0), (x1, y1) = pts.min(0).tolist(), pts.max(0).tolist()
    # clip: boxes live in the image
    return [min(max(x0, 0.0), size), min(max(y0, 0.0), size), min(max(x1, 0.0), size), min(max(y1, 0.0), size)]


# ---- backgrounds -------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _grid(n: int):
    return (np.mgrid[0:n, 0:n] / n).astype(np.float32)


def background(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A textured ``(n, n, 3)`` uint8 background of the given kind."""
    yy, xx = _grid(n)
    noise = rng.standard_normal((n, n, 1), dtype=np.float32)
    if kind == "grass":
        img = np.array([150, 200, 115]) + 14 * noise + 10 * np.sin(xx * 40 + rng.uniform(0, 6))[..., None]
    elif kind == "sand":
        img = np.array([228, 208, 160]) + 9 * noise
    elif kind == "sky":
        img = np.array([130, 180, 235]) * (1 - yy[..., None]) + np.array([205, 228, 248]) * yy[..., None] + 3 * noise
    elif kind == "water":
        waves = np.sin(yy * 30 + 3 * np.sin(xx * 8 + rng.uniform(0, 6)))[..., None]
        img = np.array([95, 150, 195]) + 18 * waves + 6 * noise
    elif kind == "snow":
        img = np.array([236, 239, 244]) + 5 * noise
    elif kind == "wall":
        rows = (yy * 8 + 0.0) % 1 < 0.12
        cols = ((xx * 5 + 0.5 * (np.floor(yy * 8) % 2)) % 1) < 0.08
        img = np.array([205, 185, 170]) + 6 * noise - 45 * (rows | cols)[..., None]
    elif kind == "night":
        stars = (rng.random((n, n), dtype=np.float32) > 0.985)[..., None]
        img = np.array([25, 30, 62]) + 4 * noise + 200 * stars
    else:
        raise ValueError(f"unknown background {kind!r}")
    return np.clip(img, 0, 255).astype(np.uint8)  # clip: noise may leave [0, 255]


def paint(canvas: Image.Image, shapes_px, rgb) -> None:
    """Fill every shape in order, outlined one canvas pixel darker."""
    draw = ImageDraw.Draw(canvas)
    cache: dict = {}
    for _, col, pts in shapes_px:
        if col not in cache:
            fill = shade(col, rgb)
            cache[col] = fill, tuple(int(v * 0.6) for v in fill)
        fill, outline = cache[col]
        draw.polygon([tuple(p) for p in pts.tolist()], fill=fill, outline=outline)
