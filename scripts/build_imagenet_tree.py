#!/usr/bin/env python
"""Rebuild ``hyplib/data/imagenet_tree.json`` from HyCoCLIP's published ImageNet edge list.

The tree is the one HyCoCLIP's hierarchical metrics (TIE, LCA, J, P_H, R_H) were computed on:
``assets/imagenet_synset/imagenet_isa.txt`` of the GitHub repository PalAvik/hycoclip (read at
commit 08bb05b863b86971f54daa60247658ed9d25f766; PHyCLIP's repository tksmatsubara/PHyCLIP ships
a byte-identical copy). That file lists 1,371 WordNet 3.0 is-a links, one ``parent child`` pair
of wnids per line; they form a tree of 1,372 nodes rooted at ``physical_entity`` (n00001930)
whose leaves are exactly the 1,000 ImageNet-1k classes. The links are taken as they are, edge
for edge; this script only checks them and adds names.

Inputs (offline):

* ``--isa``: a copy of the published edge list (its SHA-256 is :data:`PUBLISHED_SHA256`; a file
  with other content is refused unless ``--allow-other-edges`` is given).
* ``--wordnet``: WordNet 3.0 ``data.noun`` (Debian ``wordnet-base``: ``/usr/share/wordnet``),
  for the names of inner nodes (first lemma, underscores as spaces).
* the 1,000 wnids in class-index order from timm (``timm/data/_info/imagenet_synsets.txt``) and
  class names from ``open_clip.zero_shot_metadata`` (names of the leaves).

Output: the JSON :meth:`hyplib.tree.Tree.from_json` reads (``parent``, ``names``, ``leaves``)
plus ``source``. ``parent`` lists the root first, then every child in the order of the
edge list's lines, so the edge list's text is recovered from the JSON exactly
(:func:`edge_list_text`; a test checks its SHA-256 against the published file's).

An earlier version of this file rebuilt the tree from WordNet by a path rule found by search
(longest hypernym path through physical_entity, single-child chains collapsed). It matched the
node count but differed from the published file in 14 links (traffic sign, traffic light and
bubble hung under the root; the signboard and furnishing subtrees, the peripheral/electronic
equipment split and missile under weapon differed), so it was replaced by the published edges.

Usage: python scripts/build_imagenet_tree.py --isa imagenet_isa.txt [--wordnet /usr/share/wordnet] [--out PATH]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = "n00001930"  # physical_entity
PUBLISHED_SHA256 = "693089a7e3e1cb3e1ca7bde05d77d27e3f6c31b68fe3815eaa131542343436b7"
SOURCE = ("HyCoCLIP's published ImageNet hierarchy: assets/imagenet_synset/imagenet_isa.txt of "
          "github.com/PalAvik/hycoclip (commit 08bb05b8; identical in tksmatsubara/PHyCLIP), "
          f"sha256 {PUBLISHED_SHA256}, 1,371 parent-child links taken as published; names from "
          "WordNet 3.0 lemmas (inner nodes) and open_clip class names (leaves); "
          "scripts/build_imagenet_tree.py")
_WNID = re.compile(r"n\d{8}")


def read_edges(path: Path) -> list[tuple[str, str]]:
    """``(parent, child)`` wnid pairs of an edge list, in line order; errors name the line."""
    edges = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not all(_WNID.fullmatch(f) for f in fields):
            raise SystemExit(f"{path}:{number}: expected 'parent_wnid child_wnid', got {line!r}")
        edges.append((fields[0], fields[1]))
    return edges


def edge_list_text(parent: dict[str, str | None]) -> str:
    """The edge list ``parent child`` per line (newline-terminated) in ``parent``'s order."""
    return "".join(f"{p} {c}\n" for c, p in parent.items() if p is not None)


def parent_map(edges: list[tuple[str, str]]) -> dict[str, str | None]:
    """Root first, then child -> parent in edge order; refuses a child with two parents or a
    tree whose root is not physical_entity."""
    parent: dict[str, str | None] = {ROOT: None}
    for p, c in edges:
        if c in parent:
            raise SystemExit(f"{c} has two parents ({parent[c]} and {p}) or is the root")
        parent[c] = p
    unknown = sorted({p for p in parent.values() if p is not None} - set(parent))
    if unknown:
        raise SystemExit(f"parents that are nobody's child and not the root {ROOT}: {unknown[:5]}")
    return parent


def lemma_names(data_noun: Path, wnids: set[str]) -> dict[str, str]:
    """wnid -> first lemma (underscores as spaces) from WordNet's ``data.noun``."""
    names = {}
    with open(data_noun, encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            f = line.split(maxsplit=5)
            if "n" + f[0] in wnids:
                names["n" + f[0]] = f[4].replace("_", " ")
    missing = sorted(wnids - set(names))
    if missing:
        raise SystemExit(f"wnids not in {data_noun}: {missing[:5]}")
    return names


def build(edges: list[tuple[str, str]], data_noun: Path, wnids: list[str], classnames: list[str]) -> dict:
    """The tree JSON (see the module docstring) from edges, WordNet and the class list."""
    parent = parent_map(edges)
    leaves = set(parent) - {p for p in parent.values() if p is not None}
    if leaves != set(wnids):
        raise SystemExit(f"the edge list's leaves are not the {len(wnids)} classes: not classes "
                         f"{sorted(leaves - set(wnids))[:5]}, classes missing {sorted(set(wnids) - leaves)[:5]}")
    names = lemma_names(data_noun, set(parent) - leaves)
    names.update(zip(wnids, classnames))
    return {"parent": parent, "names": names, "leaves": wnids, "source": SOURCE}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--isa", required=True, type=Path, help="copy of HyCoCLIP's imagenet_isa.txt")
    ap.add_argument("--wordnet", default="/usr/share/wordnet", type=Path)
    ap.add_argument("--out", default=Path(__file__).resolve().parents[1] / "hyplib/data/imagenet_tree.json", type=Path)
    ap.add_argument("--allow-other-edges", action="store_true",
                    help="accept an edge list whose SHA-256 differs from the published file's")
    args = ap.parse_args(argv)
    if not args.isa.is_file():
        raise SystemExit(f"edge list not found: {args.isa}")
    digest = hashlib.sha256(args.isa.read_bytes()).hexdigest()
    if digest != PUBLISHED_SHA256 and not args.allow_other_edges:
        raise SystemExit(f"{args.isa} has sha256 {digest}, not the published {PUBLISHED_SHA256}")
    if not (args.wordnet / "data.noun").is_file():
        raise SystemExit(f"WordNet data.noun not found in {args.wordnet} (apt-get install wordnet-base)")
    import timm
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    syn = Path(timm.__file__).parent / "data/_info/imagenet_synsets.txt"
    wnids = [ln.strip() for ln in syn.read_text().splitlines() if ln.strip()]
    tree = build(read_edges(args.isa), args.wordnet / "data.noun", wnids, list(IMAGENET_CLASSNAMES))
    # No sort_keys: ``parent`` keeps the edge list's order (see edge_list_text).
    args.out.write_text(json.dumps(tree, indent=0))
    print(f"wrote {args.out}: {len(tree['parent'])} nodes, {len(wnids)} leaves (the classes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
