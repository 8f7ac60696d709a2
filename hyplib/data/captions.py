"""Captions of a scene: four HierarCaps-style levels, retrieval paraphrases, SugarCrepe negatives.

Levels (generic -> specific), each a :class:`~hyplib.data.semantics.Desc` whose text is
entailed by the next one: 0 supercategories ("a vehicle and a plant"), 1 basic categories
("a road vehicle and a tree"), 2 leaves with colours ("a red car and a green pine tree"),
3 level 2 plus relations between objects 0-1 and 2-3 and the background
("a red car left of a green pine tree on grass").
Compositional negatives are built by editing a true Desc and kept only if
:func:`~hyplib.data.semantics.describes` says the edit is false for the image.
"""
from __future__ import annotations

from .scene import Scene
from .semantics import Desc, Mention, describes, relation_holds
from .taxonomy import INVERSE, colours, leaves, level_name

SUBSETS = ("add_obj", "add_att", "replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att")


def _unique(seq):
    return tuple(dict.fromkeys(seq))


def scene_relations(scene: Scene) -> tuple[tuple[int, str, int], ...]:
    """Relations stated at level 3: objects (0, 1) and (2, 3), forward direction that holds."""
    rels = []
    for i, j in ((0, 1), (2, 3)):
        if j < len(scene.objects):
            a, b = scene.objects[i].box, scene.objects[j].box
            for rel in ("left of", "above"):
                if relation_holds(rel, a, b):
                    rels.append((i, rel, j))
                    break
    return tuple(rels)


def levels(scene: Scene) -> list[Desc]:
    objs = scene.objects
    l0 = Desc(tuple(Mention(c) for c in _unique(level_name(o.leaf, 1) for o in objs)))
    l1 = Desc(tuple(Mention(c) for c in _unique(level_name(o.leaf, 2) for o in objs)))
    l2 = Desc(tuple(Mention(o.leaf, o.colour) for o in objs))
    l3 = Desc(l2.mentions, scene_relations(scene), scene.background)
    return [l0, l1, l2, l3]


def level_texts(scene: Scene) -> list[str]:
    return [d.text() for d in levels(scene)]


def paraphrases(scene: Scene) -> list[Desc]:
    """Five true, specific descriptions (retrieval captions)."""
    l2, l3 = levels(scene)[2:]
    inverse = tuple((j, INVERSE[r], i) for i, r, j in l3.relations)
    basic = Desc(tuple(Mention(level_name(o.leaf, 2), o.colour) for o in scene.objects), l3.relations,
                 scene.background)
    out = [l3, Desc(l3.mentions, inverse, scene.background), Desc(l2.mentions, (), scene.background),
           Desc(l3.mentions, l3.relations, None), basic]
    assert all(describes(d, scene) for d in out), "a retrieval caption is false for its image"
    return out


# ---- SugarCrepe-style hard negatives ----------------------------------------------------------
def _pick(rng, seq):
    return seq[int(rng.integers(len(seq)))]


def composition_pair(subset: str, scene: Scene, rng) -> tuple[Desc, Desc] | None:
    """(positive, negative) for ``subset`` or None when this scene cannot host it.

    The positive is true of ``scene``; the negative is asserted false of it.
    """
    l2, l3 = levels(scene)[2:]
    pos = Desc(l3.mentions, l3.relations, None)
    present = {o.leaf for o in scene.objects}
    if subset == "add_obj":
        absent = [lf for lf in leaves() if lf not in present]
        neg = Desc(pos.mentions + (Mention(_pick(rng, absent), _pick(rng, colours())),), pos.relations)
    elif subset == "add_att":
        k = int(rng.integers(len(pos.mentions)))
        pos = pos.with_mention(k, Mention(pos.mentions[k].category))
        neg = pos.with_mention(k, Mention(pos.mentions[k].category, _pick(rng, colours())))
    elif subset == "replace_obj":
        k = int(rng.integers(len(pos.mentions)))
        sib = [lf for lf in leaves() if lf != pos.mentions[k].category
               and level_name(lf, 1) == level_name(pos.mentions[k].category, 1)]
        neg = pos.with_mention(k, Mention(_pick(rng, sib), pos.mentions[k].colour))
    elif subset == "replace_att":
        k = int(rng.integers(len(pos.mentions)))
        other = [c for c in colours() if c != pos.mentions[k].colour]
        neg = pos.with_mention(k, Mention(pos.mentions[k].category, _pick(rng, other)))
    elif subset in ("replace_rel", "swap_obj"):
        if not pos.relations:
            return None
        pos = Desc(pos.mentions, pos.relations[:1])
        i, r, j = pos.relations[0]
        if subset == "replace_rel":
            neg = Desc(pos.mentions, ((i, _pick(rng, [x for x in INVERSE if x != r]), j),))
        else:
            neg = Desc(pos.mentions, ((j, r, i),))
    elif subset == "swap_att":
        pairs = [(a, b) for a in range(len(pos.mentions)) for b in range(a + 1, len(pos.mentions))
                 if pos.mentions[a].colour != pos.mentions[b].colour]
        if not pairs:
            return None
        a, b = _pick(rng, pairs)
        ma, mb = pos.mentions[a], pos.mentions[b]
        neg = pos.with_mention(a, Mention(ma.category, mb.colour)).with_mention(b, Mention(mb.category, ma.colour))
    else:
        raise ValueError(f"unknown composition subset {subset!r}; valid: {SUBSETS}")
    if describes(neg, scene) or neg.text() == pos.text():
        return None
    assert describes(pos, scene), f"positive is false for its image: {pos.text()}"
    return pos, neg
