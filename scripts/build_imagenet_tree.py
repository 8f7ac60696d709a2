#!/usr/bin/env python
"""Rebuild ``hyplib/data/imagenet_tree.json``: the ImageNet-1k hierarchy used by HyCoCLIP's
hierarchical metrics (1,372 WordNet nodes, root ``physical_entity``, the 1,000 classes exactly
the leaves).

Sources (offline): WordNet 3.0 ``data.noun`` (Debian ``wordnet-base``: ``/usr/share/wordnet``;
``apt-get install wordnet-base``), the 1,000 wnids in class-index order from timm
(``timm/data/_info/imagenet_synsets.txt``), class names from ``open_clip.zero_shot_metadata``.

Path rule (found by search; it reproduces both the node count and the published sanity figures
of a uniform-random predictor, TIE ~11.4 and Jaccard ~0.31):
    1. For each class, enumerate its hypernym paths (``@`` and ``@i`` pointers, depth first in the
       pointer order of ``data.noun``) and keep those through ``physical_entity``, cut to start
       there; take the *longest* (first such in that order on ties).
       The three classes with no path through physical_entity (street sign, traffic light,
       bubble: they sit under abstraction) hang directly under physical_entity.
    2. Union the chosen paths into a tree (every node keeps the parent of its chosen path).
    3. Collapse every non-root inner node with exactly one child (its child takes its parent).
Without step 3 the union has 1,802 nodes; first/shortest/last path rules give 1,368-1,369.

Usage: python scripts/build_imagenet_tree.py [--wordnet /usr/share/wordnet] [--out PATH]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT_WORD = "physical_entity"


def parse_nouns(path: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """wnid -> hypernym wnids (pointer order), wnid -> lemma words, from WordNet's data.noun."""
    hyper, words = {}, {}
    with open(path, encoding="latin-1") as fh:
        for line in fh:
            if line.startswith("  "):  # licence header
                continue
            f = line.split("|")[0].split()
            wnid, n_words = "n" + f[0], int(f[3], 16)
            words[wnid] = [f[4 + 2 * i] for i in range(n_words)]
            i = 4 + 2 * n_words
            n_ptr, i = int(f[i]), i + 1
            hyper[wnid] = []
            for _ in range(n_ptr):
                sym, off, pos = f[i], f[i + 1], f[i + 2]
                i += 4
                if sym in ("@", "@i") and pos == "n":
                    hyper[wnid].append("n" + off)
    return hyper, words


def hypernym_paths(wnid: str, hyper: dict) -> list[list[str]]:
    """All root -> wnid paths, depth first in pointer order."""
    if not hyper[wnid]:
        return [[wnid]]
    return [p + [wnid] for h in hyper[wnid] for p in hypernym_paths(h, hyper)]


def chosen_path(wnid: str, hyper: dict, root: str) -> list[str]:
    through = [p[p.index(root):] for p in hypernym_paths(wnid, hyper) if root in p]
    if not through:
        return [root, wnid]
    best = max(len(p) for p in through)
    return next(p for p in through if len(p) == best)


def collapse_chains(parent: dict[str, str | None]) -> dict[str, str | None]:
    """Remove non-root nodes with exactly one child, linking the child to the grandparent."""
    n_children: dict[str, int] = {}
    for node, par in parent.items():
        if par is not None:
            n_children[par] = n_children.get(par, 0) + 1
    drop = {n for n, k in n_children.items() if k == 1 and parent[n] is not None}

    def up(node):
        p = parent[node]
        while p in drop:
            p = parent[p]
        return p
    return {n: up(n) for n in parent if n not in drop}


def build(wordnet_dir: Path, wnids: list[str], classnames: list[str]) -> dict:
    hyper, words = parse_nouns(wordnet_dir / "data.noun")
    root = next(w for w, ws in words.items() if ws[0] == ROOT_WORD)
    missing = [w for w in wnids if w not in hyper]
    if missing:
        raise SystemExit(f"wnids not in WordNet's data.noun: {missing[:5]}")
    parent: dict[str, str | None] = {root: None}
    for w in wnids:
        path = chosen_path(w, hyper, root)
        for a, b in zip(path[:-1], path[1:]):
            parent.setdefault(b, a)
    parent = collapse_chains(parent)
    names = {n: words[n][0].replace("_", " ") for n in parent}
    names.update(dict(zip(wnids, classnames)))
    return {"parent": parent, "names": names, "leaves": wnids,
            "source": "WordNet 3.0 data.noun; longest hypernym path through physical_entity; "
                      "single-child inner nodes collapsed (scripts/build_imagenet_tree.py)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--wordnet", default="/usr/share/wordnet", type=Path)
    ap.add_argument("--out", default=Path(__file__).resolve().parents[1] / "hyplib/data/imagenet_tree.json", type=Path)
    args = ap.parse_args(argv)
    if not (args.wordnet / "data.noun").is_file():
        raise SystemExit(f"WordNet data.noun not found in {args.wordnet} (apt-get install wordnet-base)")
    import timm
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES
    syn = Path(timm.__file__).parent / "data/_info/imagenet_synsets.txt"
    wnids = [ln.strip() for ln in syn.read_text().splitlines() if ln.strip()]
    tree = build(args.wordnet, wnids, list(IMAGENET_CLASSNAMES))
    args.out.write_text(json.dumps(tree, indent=0, sort_keys=True))
    leaves = set(tree["parent"]) - {p for p in tree["parent"].values() if p}
    print(f"wrote {args.out}: {len(tree['parent'])} nodes, {len(leaves)} leaves, "
          f"leaves == classes: {leaves == set(wnids)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
