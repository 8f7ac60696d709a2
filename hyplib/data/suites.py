"""Build each benchmark of the generated world (arrays + meta for :func:`write_benchmark`).

Every builder draws from its own seed stream (:data:`~hyplib.data.genconfig.STREAMS`), uses the
training distribution minus held-out pairs unless said otherwise, and checks its own ground truth
(captions true, negatives false) by construction.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from .captions import SUBSETS, composition_pair, level_texts, levels, paraphrases
from .genconfig import STREAMS, GenConfig
from .preprocess import crop_box
from .scene import render, sample_pairs
from .semantics import describes
from .taxonomy import BACKGROUNDS, colours, heldout_pairs, leaves, object_tree

TEMPLATES = ["a photo of a {}.", "a drawing of a {}.", "a picture of a {}.", "a small picture of the {}.",
             "an image of a {}.", "a {} in a scene."]


def _rng(cfg: GenConfig, name: str, *more) -> np.random.Generator:
    return np.random.default_rng([cfg.seed, STREAMS[name], *more])


def _bg(rng):
    return list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]


def _scene(cfg, rng, n_objects, forbid):
    n = int(n_objects) if np.isscalar(n_objects) else 1 + int(rng.choice(len(n_objects), p=n_objects))
    return render(sample_pairs(rng, n, forbid), _bg(rng), cfg.image_size, rng, ss=cfg.supersample)


def _weights(cfg):
    w = np.asarray(cfg.objects_per_scene, float)
    return w / w.sum()


def zeroshot(cfg: GenConfig):
    rng, forbid = _rng(cfg, "zeroshot"), set(heldout_pairs(cfg.seed))
    images, labels = [], []
    for k, leaf in enumerate(leaves()):
        for _ in range(cfg.zeroshot_per_class):
            col = colours()[rng.integers(len(colours()))]
            while (col, leaf) in forbid:
                col = colours()[rng.integers(len(colours()))]
            img, _ = render([(leaf, col)], _bg(rng), cfg.image_size, rng, ss=cfg.supersample)
            images.append(img)
            labels.append(k)
    meta = {"classnames": leaves(), "class_ids": leaves(), "templates": TEMPLATES}
    return {"images": np.stack(images), "labels": np.asarray(labels, np.int64)}, meta


def taxonomy(cfg: GenConfig):
    t = object_tree()
    return {}, {"parent": t.parent, "names": t.names, "leaves": t.leaves}


def retrieval(cfg: GenConfig):
    rng, forbid = _rng(cfg, "retrieval"), set(heldout_pairs(cfg.seed))
    images, captions, owner = [], [], []
    w = _weights(cfg)[1:] / _weights(cfg)[1:].sum()  # retrieval scenes hold 2-4 objects
    for i in range(cfg.retrieval_images):
        n = 2 + int(rng.choice(len(w), p=w))
        img, scene = _scene(cfg, rng, n, forbid)
        images.append(img)
        for d in paraphrases(scene):
            captions.append(d.text())
            owner.append(i)
    return {"images": np.stack(images), "caption_image": np.asarray(owner, np.int64)}, {"captions": captions}


def hierarcaps(cfg: GenConfig):
    rng, forbid = _rng(cfg, "hierarcaps"), set(heldout_pairs(cfg.seed))
    images, caps = [], []
    for _ in range(cfg.hierarcaps_images):
        img, scene = _scene(cfg, rng, _weights(cfg), forbid)
        images.append(img)
        caps.append(level_texts(scene))
    return {"images": np.stack(images)}, {"captions": caps}


def pep(cfg: GenConfig):
    """Entailment pairs: positives caption>image and generic>specific; negatives reversed and
    cross-image, each negative proven false (a witness scene, or the parent is false of the
    child's own scene)."""
    rng, forbid = _rng(cfg, "pep"), set(heldout_pairs(cfg.seed))
    scenes, images = [], []
    for _ in range(cfg.pep_images):
        img, scene = _scene(cfg, rng, _weights(cfg), forbid)
        images.append(img)
        scenes.append(scene)
    descs = [levels(s) for s in scenes]
    texts = [d.text() for ds in descs for d in ds]
    pairs, labels, types = [], [], []

    def add(pk, pi, ck, ci, lab, typ):
        pairs.append((pk, pi, ck, ci))
        labels.append(lab)
        types.append(typ)

    n = len(scenes)
    for i, ds in enumerate(descs):
        for lv in range(4):
            add(1, 4 * i + lv, 0, i, 1, "caption>image")
        for a in range(4):
            for b in range(a + 1, 4):
                if texts[4 * i + a] == texts[4 * i + b]:
                    continue
                add(1, 4 * i + a, 1, 4 * i + b, 1, "generic>specific")
                # reversed: specific as parent of generic; false if some scene has generic true, specific false
                if any(describes(ds[a], s) and not describes(ds[b], s) for s in scenes):
                    add(1, 4 * i + b, 1, 4 * i + a, 0, "reversed")
        add(0, i, 1, 4 * i + int(rng.integers(4)), 0, "reversed")  # an image is never a parent
        for _ in range(3):
            j, lv = int(rng.integers(n)), int(rng.integers(4))
            if j != i and not describes(ds[lv], scenes[j]):
                add(1, 4 * i + lv, 0, j, 0, "cross")
            j, lv2 = int(rng.integers(n)), int(rng.integers(4))
            if j != i and not describes(ds[lv], scenes[j]):
                add(1, 4 * i + lv, 1, 4 * j + lv2, 0, "cross")
    arrays = {"images": np.stack(images), "pairs": np.asarray(pairs, np.int64), "labels": np.asarray(labels, np.int64)}
    return arrays, {"texts": texts, "pair_types": types}


def chains(cfg: GenConfig):
    """Whole -> part -> sub-part crops of one large object rendered at ``chain_render_scale`` x
    the image size, each padded to square and resized; text chains adjective -> phrase -> caption."""
    rng, forbid = _rng(cfg, "chains"), set(heldout_pairs(cfg.seed))
    big, size = cfg.image_size * cfg.chain_render_scale, cfg.image_size
    whole, part, sub, text, labels, names = [], [], [], [], [], []
    while len(whole) < cfg.chain_items:
        (leaf, col), = sample_pairs(rng, 1, forbid)
        img, scene = render([(leaf, col)], _bg(rng), big, rng, ss=cfg.supersample, scale=(0.85, 0.95))
        obj = scene.objects[0]
        cands = [(p, s) for p in obj.parts for s in p["sub"]
                 if (s["box"][2] - s["box"][0]) * (s["box"][3] - s["box"][1]) >= (big / 32) ** 2]
        if not cands:
            continue
        p, s = cands[int(rng.integers(len(cands)))]
        pil = Image.fromarray(img)
        for out, box in ((whole, obj.box), (part, p["box"]), (sub, s["box"])):
            out.append(np.asarray(crop_box(pil, box, size), np.uint8))
        noun = levels(scene)[2].mentions[0].text()
        text.append([col, noun, levels(scene)[3].text()])
        labels.append(leaf)
        names.append([p["name"], s["name"]])
    arrays = {"whole": np.stack(whole), "part": np.stack(part), "subpart": np.stack(sub)}
    return arrays, {"text_chains": text, "labels": labels, "parts": names}


def composition(cfg: GenConfig):
    """SugarCrepe-style items per subset; ``heldout_fraction`` of them name a held-out pair."""
    rng = _rng(cfg, "composition")
    held = set(heldout_pairs(cfg.seed))
    images, pos, neg, subs, flags = [], [], [], [], []
    for subset in SUBSETS:
        n_held = int(round(cfg.composition_per_subset * cfg.heldout_fraction))
        for k in range(cfg.composition_per_subset):
            want_held = k < n_held
            while True:
                if subset in ("replace_rel", "swap_obj", "swap_att"):
                    n = 2 + int(rng.integers(2))
                else:
                    n = 1 + int(rng.integers(3))
                pairs = sample_pairs(rng, n, held)
                if want_held:
                    pairs[int(rng.integers(n))] = tuple(reversed(sorted(held)[int(rng.integers(len(held)))]))
                img, scene = render(pairs, _bg(rng), cfg.image_size, rng, ss=cfg.supersample)
                out = composition_pair(subset, scene, rng)
                if out is None:
                    continue
                named = {(m.colour, m.category) for m in out[0].mentions}
                if bool(named & held) == want_held:
                    break
            images.append(img)
            pos.append(out[0].text())
            neg.append(out[1].text())
            subs.append(subset)
            flags.append(want_held)
    meta = {"positives": pos, "negatives": neg, "subsets": subs, "heldout": flags,
            "heldout_pairs": [list(p) for p in sorted(held)]}
    return {"images": np.stack(images)}, meta


BUILDERS = {"zeroshot": zeroshot, "taxonomy": taxonomy, "retrieval": retrieval, "pep": pep,
            "chains": chains, "composition": composition, "hierarcaps": hierarcaps}
