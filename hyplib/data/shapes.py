"""One procedural drawing per leaf category, with named parts and sub-parts.

Each drawer takes an rng (small proportion jitter) and returns ``(aspect, shapes)`` in the
height units of :mod:`hyplib.data.draw` (x in ``[0, aspect]``, y in ``[0, 1]``). Later shapes
paint over earlier ones; parts are named ``name:i`` and sub-parts ``name:i/sub``.
"""
from __future__ import annotations

import numpy as np

from .draw import DARK, LIGHT, MAIN, arc_band, circle, ellipse, half_ellipse, line, poly, rect, rotated


def _wheels(xs, y, r):
    out = []
    for i, x in enumerate(xs):
        out += [(f"wheel:{i}", "black", circle(x, y, r)), (f"wheel:{i}/hubcap", "gray", circle(x, y, r * 0.4))]
    return out


def car(rng):
    h = rng.uniform(0.08, 0.14)
    return 1.8, [("body:0", MAIN, rect(0, 0.42, 1.8, 0.8)),
                 ("cabin:0", MAIN, poly((0.35, 0.43), (0.55, h), (1.25, h), (1.5, 0.43))),
                 ("cabin:0/window", "glass", poly((0.52, 0.4), (0.65, h + 0.08), (1.15, h + 0.08), (1.3, 0.4))),
                 ] + _wheels([0.42, 1.38], 0.8, 0.2)


def truck(rng):
    return 2.0, [("cargo box:0", MAIN, rect(0, rng.uniform(0.05, 0.15), 1.3, 0.75)),
                 ("cab:0", DARK, poly((1.36, 0.3), (1.7, 0.3), (2.0, 0.55), (2.0, 0.78), (1.36, 0.78))),
                 ("cab:0/window", "glass", poly((1.45, 0.36), (1.68, 0.36), (1.88, 0.55), (1.45, 0.55))),
                 ] + _wheels([0.3, 0.95, 1.7], 0.82, 0.18)


def bus(rng):
    shapes = [("body:0", MAIN, rect(0, 0.1, 2.2, 0.82))]
    for i, x in enumerate(np.linspace(0.12, 1.5, 4)):
        shapes.append((f"window:{i}", "glass", rect(x, 0.22, x + 0.3, 0.45)))
    shapes.append(("door:0", DARK, rect(1.93, 0.25, 2.12, 0.82)))
    return 2.2, shapes + _wheels([0.45, 1.7], 0.82, 0.18)


def airplane(rng):
    return 2.0, [("tail:0", DARK, poly((0.05, 0.5), (0.3, 0.5), (0.14, 0.08), (0.0, 0.08))),
                 ("fuselage:0", MAIN, ellipse(1.0, 0.52, 0.98, 0.15)),
                 ("fuselage:0/cockpit", "glass", ellipse(1.72, 0.47, 0.13, 0.06)),
                 ("wing:0", DARK, poly((0.8, 0.55), (1.25, 0.55), (0.75, 0.99), (0.52, 0.99)))]


def helicopter(rng):
    return 1.6, [("tail:0", MAIN, rect(0.9, 0.47, 1.6, 0.57)),
                 ("tail:0/tail rotor", "black", rect(1.5, 0.32, 1.56, 0.62)),
                 ("rotor:0", "black", rect(0.0, 0.1, 1.3, 0.16)),
                 ("rotor:0/mast", "gray", rect(0.57, 0.14, 0.65, 0.3)),
                 ("cabin:0", MAIN, ellipse(0.6, 0.56, 0.45, 0.28)),
                 ("cabin:0/window", "glass", ellipse(0.8, 0.5, 0.18, 0.14)),
                 ("skid:0", "black", rect(0.2, 0.92, 1.0, 0.97)),
                 ("skid:1", "black", rect(0.45, 0.8, 0.5, 0.93))]


def rocket(rng):
    return 0.55, [("flame:0", "orange", poly((0.17, 0.8), (0.38, 0.8), (0.275, 1.0))),
                  ("fin:0", DARK, poly((0.13, 0.55), (0.13, 0.85), (0.0, 0.9))),
                  ("fin:1", DARK, poly((0.42, 0.55), (0.42, 0.85), (0.55, 0.9))),
                  ("body:0", MAIN, rect(0.13, 0.3, 0.42, 0.82)),
                  ("body:0/window", "glass", circle(0.275, 0.5, 0.08)),
                  ("nose cone:0", DARK, poly((0.13, 0.31), (0.42, 0.31), (0.275, 0.0)))]


def pine_tree(rng):
    shapes = [("trunk:0", "brown", rect(0.33, 0.8, 0.47, 1.0))]
    for y0, w in ((0.35, 0.4), (0.18, 0.32), (0.0, 0.24)):
        shapes.append(("crown:0", MAIN, poly((0.4 - w, y0 + 0.45), (0.4 + w, y0 + 0.45), (0.4, y0))))
    shapes.append(("crown:0/cone", "brown", ellipse(0.5, 0.62, 0.05, 0.07)))
    return 0.8, shapes


def oak_tree(rng):
    return 0.9, [("trunk:0", "brown", rect(0.37, 0.5, 0.53, 1.0)),
                 ("crown:0", MAIN, circle(0.45, 0.33, 0.32)),
                 ("crown:0", MAIN, circle(0.22, 0.45, 0.2)),
                 ("crown:0", MAIN, circle(0.68, 0.45, 0.2)),
                 ("crown:0/fruit", "red", circle(0.55, 0.3, 0.06))]


def palm_tree(rng):
    shapes = [("trunk:0", "brown", poly((0.4, 1.0), (0.52, 1.0), (0.5, 0.25), (0.44, 0.25)))]
    for a in np.linspace(-2.9, -0.25, 5):
        cx, cy = 0.47 + 0.22 * np.cos(a), 0.3 + 0.2 * np.sin(a) + 0.08
        shapes.append(("frond:0", MAIN, rotated(ellipse(cx, cy, 0.23, 0.07), cx, cy, a)))
    shapes.append(("frond:0/coconut", "brown", circle(0.47, 0.32, 0.06)))
    return 0.9, [(p, c, np.clip(pt, [0, 0], [0.9, 1])) for p, c, pt in shapes]


def tulip(rng):
    return 0.5, [("stem:0", "green", rect(0.23, 0.4, 0.27, 1.0)),
                 ("leaf:0", "green", ellipse(0.34, 0.75, 0.07, 0.18)),
                 ("blossom:0", MAIN, poly((0.05, 0.05), (0.16, 0.18), (0.25, 0.02), (0.34, 0.18), (0.45, 0.05),
                                          (0.42, 0.35), (0.25, 0.45), (0.08, 0.35))),
                 ("blossom:0/petal", LIGHT, poly((0.16, 0.2), (0.25, 0.05), (0.34, 0.2), (0.25, 0.38)))]


def daisy(rng):
    shapes = [("stem:0", "green", rect(0.28, 0.5, 0.32, 1.0))]
    for a in np.linspace(0, 2 * np.pi, 10, endpoint=False):
        shapes.append(("blossom:0", MAIN, ellipse(0.3 + 0.17 * np.cos(a), 0.3 + 0.17 * np.sin(a), 0.11, 0.11)))
    shapes.append(("blossom:0/center", "yellow", circle(0.3, 0.3, 0.1)))
    return 0.6, shapes


def cactus(rng):
    return 0.7, [("arm:0", MAIN, poly((0.1, 0.25), (0.2, 0.25), (0.2, 0.5), (0.3, 0.5), (0.3, 0.58), (0.1, 0.58))),
                 ("arm:1", MAIN, poly((0.5, 0.35), (0.6, 0.35), (0.6, 0.65), (0.4, 0.65), (0.4, 0.57), (0.5, 0.57))),
                 ("body:0", MAIN, rect(0.26, 0.1, 0.44, 0.8)),
                 ("body:0/flower", "red", circle(0.35, 0.1, 0.07)),
                 ("pot:0", "orange", poly((0.12, 0.78), (0.58, 0.78), (0.52, 1.0), (0.18, 1.0)))]


def house(rng):
    return 1.1, [("roof:0/chimney", "brown", rect(0.75, 0.08, 0.87, 0.35)),
                 ("wall:0", MAIN, rect(0.1, 0.45, 1.0, 1.0)),
                 ("wall:0/window", "glass", rect(0.2, 0.56, 0.42, 0.76)),
                 ("wall:0/door", "brown", rect(0.62, 0.6, 0.82, 1.0)),
                 ("roof:0", DARK, poly((0.0, 0.48), (1.1, 0.48), (0.55, 0.05)))]


def tent(rng):
    return 1.2, [("pole:0", "black", rect(0.58, 0.0, 0.62, 0.2)),
                 ("pole:0/flag", "red", poly((0.62, 0.0), (0.8, 0.05), (0.62, 0.1))),
                 ("canvas:0", MAIN, poly((0.0, 1.0), (1.2, 1.0), (0.6, 0.12))),
                 ("canvas:0/entrance", DARK, poly((0.45, 1.0), (0.75, 1.0), (0.6, 0.5)))]


def igloo(rng):
    shapes = [("dome:0", MAIN, half_ellipse(0.6, 1.0, 0.6, 0.8))]
    for y in (0.45, 0.7):
        shapes.append(("dome:0/ice block", LIGHT, rect(0.2, y, 1.0, y + 0.04)))
    shapes += [("entrance:0", MAIN, half_ellipse(1.0, 1.0, 0.28, 0.38)),
               ("entrance:0/door", "black", half_ellipse(1.03, 1.0, 0.15, 0.25))]
    return 1.3, shapes


def castle_tower(rng):
    shapes = [("flag:0", "red", poly((0.3, 0.0), (0.5, 0.05), (0.3, 0.1))),
              ("flag:0/pole", "black", rect(0.28, 0.0, 0.31, 0.2)),
              ("wall:0", MAIN, rect(0.05, 0.3, 0.55, 1.0)),
              ("wall:0/window", "black", rect(0.22, 0.5, 0.38, 0.7))]
    for x in (0.05, 0.24, 0.43):
        shapes.append(("battlement:0", MAIN, rect(x, 0.18, x + 0.12, 0.31)))
    return 0.6, shapes


def lighthouse(rng):
    return 0.5, [("tower:0", MAIN, poly((0.08, 1.0), (0.42, 1.0), (0.34, 0.3), (0.16, 0.3))),
                 ("tower:0/stripe", "white", poly((0.11, 0.8), (0.39, 0.8), (0.375, 0.68), (0.125, 0.68))),
                 ("tower:0/stripe", "white", poly((0.15, 0.5), (0.35, 0.5), (0.34, 0.4), (0.16, 0.4))),
                 ("lamp room:0", "glass", rect(0.17, 0.14, 0.33, 0.3)),
                 ("lamp room:0/light", "yellow", circle(0.25, 0.22, 0.05)),
                 ("roof:0", DARK, poly((0.12, 0.15), (0.38, 0.15), (0.25, 0.0)))]


def skyscraper(rng):
    shapes = [("antenna:0", "gray", rect(0.2, 0.0, 0.25, 0.12)),
              ("facade:0", MAIN, rect(0.0, 0.1, 0.45, 1.0))]
    for r in range(6):
        for c in range(3):
            x, y = 0.05 + c * 0.135, 0.17 + r * 0.135
            shapes.append(("facade:0/window", "glass", rect(x, y, x + 0.08, y + 0.08)))
    return 0.45, shapes


def fish(rng):
    return 1.6, [("tail:0", DARK, poly((0.18, 0.5), (0.0, 0.18), (0.0, 0.82))),
                 ("fin:0", DARK, poly((0.5, 0.25), (0.85, 0.25), (0.55, 0.06))),
                 ("body:0", MAIN, ellipse(0.85, 0.5, 0.72, 0.3)),
                 ("body:0/eye", "white", circle(1.25, 0.43, 0.08)),
                 ("body:0/eye", "black", circle(1.27, 0.43, 0.04))]


def jellyfish(rng):
    shapes = []
    for i, x in enumerate((0.14, 0.3, 0.5, 0.66)):
        ys = np.linspace(0.4, 1.0, 6)
        xs = x + 0.05 * np.sin(ys * 14 + i)
        pts = np.concatenate([np.stack([xs - 0.03, ys], 1), np.stack([xs[::-1] + 0.03, ys[::-1]], 1)])
        shapes.append(("tentacle:0", LIGHT, pts))
    shapes += [("bell:0", MAIN, half_ellipse(0.4, 0.45, 0.38, 0.43)),
               ("bell:0/spot", LIGHT, circle(0.3, 0.28, 0.06)),
               ("bell:0/spot", LIGHT, circle(0.5, 0.22, 0.05))]
    return 0.8, shapes


def crab(rng):
    shapes = []
    for s in (-1, 1):
        for k in range(3):
            x = 0.7 + s * (0.2 + 0.1 * k)
            shapes.append(("leg:0", DARK, line(x, 0.6, x + s * 0.2, 0.95, 0.05)))
    shapes += [("claw:0", DARK, line(0.45, 0.5, 0.2, 0.3, 0.07)), ("claw:1", DARK, line(0.95, 0.5, 1.2, 0.3, 0.07)),
               ("claw:0", MAIN, circle(0.17, 0.25, 0.15)), ("claw:1", MAIN, circle(1.23, 0.25, 0.15)),
               ("shell:0", MAIN, ellipse(0.7, 0.58, 0.42, 0.25)),
               ("shell:0/eye", "black", circle(0.6, 0.4, 0.05)), ("shell:0/eye", "black", circle(0.8, 0.4, 0.05))]
    return 1.4, shapes


def snail(rng):
    return 1.4, [("foot:0", "beige",
                  poly((0.0, 0.98), (1.4, 0.98), (1.3, 0.75), (1.18, 0.75), (1.1, 0.85), (0.1, 0.86))),
                 ("foot:0/antenna", "black", line(1.25, 0.78, 1.35, 0.5, 0.04)),
                 ("shell:0", MAIN, circle(0.62, 0.5, 0.38)),
                 ("shell:0/spiral", DARK, circle(0.62, 0.5, 0.22)),
                 ("shell:0/spiral", MAIN, circle(0.62, 0.5, 0.13))]


def turtle(rng):
    return 1.6, [("leg:0", "green", rect(0.35, 0.7, 0.5, 0.95)), ("leg:1", "green", rect(1.0, 0.7, 1.15, 0.95)),
                 ("head:0", "green", circle(1.42, 0.6, 0.16)),
                 ("head:0/eye", "black", circle(1.48, 0.55, 0.04)),
                 ("shell:0", MAIN, half_ellipse(0.75, 0.8, 0.62, 0.62)),
                 ("shell:0/plate", DARK,
                  poly((0.6, 0.45), (0.9, 0.45), (1.0, 0.62), (0.9, 0.75), (0.6, 0.75), (0.5, 0.62)))]


def spider(rng):
    shapes = []
    for s in (-1, 1):
        for dy in (-0.25, -0.08, 0.1, 0.25):
            x1, y1 = 0.6 + s * 0.33, 0.5 + dy
            shapes.append(("leg:0", "black", line(0.6, 0.55, x1, y1 - 0.12, 0.05)))
            shapes.append(("leg:0", "black", line(x1, y1 - 0.12, x1 + s * 0.22, y1 + 0.25, 0.05)))
    shapes += [("body:0", MAIN, ellipse(0.6, 0.62, 0.24, 0.22)),
               ("head:0", MAIN, circle(0.6, 0.36, 0.14)),
               ("head:0/eye", "white", circle(0.55, 0.33, 0.04)), ("head:0/eye", "white", circle(0.65, 0.33, 0.04))]
    return 1.2, [(p, c, np.clip(pt, [0, 0], [1.2, 1])) for p, c, pt in shapes]


def chair(rng):
    return 0.7, [("backrest:0", MAIN, rect(0.05, 0.0, 0.18, 0.58)),
                 ("backrest:0/cushion", LIGHT, rect(0.08, 0.08, 0.15, 0.45)),
                 ("seat:0", MAIN, rect(0.05, 0.5, 0.65, 0.6)),
                 ("leg:0", DARK, rect(0.05, 0.6, 0.13, 1.0)), ("leg:1", DARK, rect(0.57, 0.6, 0.65, 1.0))]


def table(rng):
    return 1.5, [("leg:0", DARK, rect(0.1, 0.4, 0.22, 1.0)), ("leg:1", DARK, rect(1.28, 0.4, 1.4, 1.0)),
                 ("top:0", MAIN, rect(0.0, 0.3, 1.5, 0.44)),
                 ("top:0/vase", "white", poly((0.65, 0.3), (0.85, 0.3), (0.8, 0.05), (0.7, 0.05)))]


def lamp(rng):
    return 0.7, [("pole:0", "gray", rect(0.32, 0.35, 0.38, 0.92)),
                 ("base:0", DARK, ellipse(0.35, 0.93, 0.25, 0.07)),
                 ("shade:0", MAIN, poly((0.15, 0.0), (0.55, 0.0), (0.7, 0.36), (0.0, 0.36))),
                 ("shade:0/bulb", "yellow", circle(0.35, 0.38, 0.08))]


def cup(rng):
    return 1.0, [("handle:0", DARK, arc_band(0.72, 0.55, 0.25, 0.14, -1.3, 1.3)),
                 ("body:0", MAIN, poly((0.05, 0.15), (0.8, 0.15), (0.72, 0.95), (0.13, 0.95))),
                 ("body:0/stripe", LIGHT, poly((0.08, 0.35), (0.77, 0.35), (0.76, 0.48), (0.09, 0.48)))]


def bottle(rng):
    return 0.45, [("body:0", MAIN, rect(0.02, 0.38, 0.43, 1.0)),
                  ("body:0/label", "white", rect(0.02, 0.58, 0.43, 0.82)),
                  ("neck:0", MAIN, poly((0.02, 0.4), (0.15, 0.22), (0.3, 0.22), (0.43, 0.4))),
                  ("neck:0", MAIN, rect(0.15, 0.07, 0.3, 0.25)),
                  ("neck:0/cap", "black", rect(0.13, 0.0, 0.32, 0.08))]


def teapot(rng):
    return 1.5, [("handle:0", DARK, arc_band(0.3, 0.58, 0.3, 0.18, np.pi / 2, 3 * np.pi / 2)),
                 ("spout:0", MAIN, poly((1.05, 0.55), (1.45, 0.22), (1.5, 0.3), (1.15, 0.78))),
                 ("body:0", MAIN, ellipse(0.75, 0.62, 0.5, 0.36)),
                 ("lid:0", DARK, half_ellipse(0.75, 0.3, 0.25, 0.14)),
                 ("lid:0/knob", "black", circle(0.75, 0.12, 0.06))]


DRAWERS = {
    "car": car, "truck": truck, "bus": bus, "airplane": airplane, "helicopter": helicopter,
    "rocket": rocket, "pine tree": pine_tree, "oak tree": oak_tree, "palm tree": palm_tree,
    "tulip": tulip, "daisy": daisy, "cactus": cactus, "house": house, "tent": tent, "igloo": igloo,
    "castle tower": castle_tower, "lighthouse": lighthouse, "skyscraper": skyscraper, "fish": fish,
    "jellyfish": jellyfish, "crab": crab, "snail": snail, "turtle": turtle, "spider": spider,
    "chair": chair, "table": table, "lamp": lamp, "cup": cup, "bottle": bottle, "teapot": teapot,
}
