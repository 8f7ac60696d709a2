"""Your own classes for zero-shot and the hierarchy metrics: class folders with any names, an
optional taxonomy file and optional prompt templates (``data.paths.class_folders``,
``data.paths.taxonomy``, ``data.paths.templates``).

* **Class folders**: ``root/<class id>/*.jpg|png|...``, one folder per class, any folder names
  (letters, digits, ``_``, ``-``, spaces). The class ids are the folder names, in sorted order;
  a class's prompt name is its ``name`` in the taxonomy, else its folder name with ``_`` and
  ``-`` read as spaces.
* **Taxonomy** (optional): a ``.csv`` (or ``.tsv``, tab-separated) file with one row per node,
  ``child,parent`` or ``child,parent,name``; a header row ``child,parent[,name]`` is allowed,
  blank lines and lines starting with ``#`` are ignored. A node whose parent is empty, or that
  appears only as a parent, is a top-level node; with several of them a root node
  :data:`ROOT` is added above them. Its leaves must be exactly the class folders.
* **Templates** (optional): a text file with one prompt template per line, each containing
  ``{}`` (where the class name goes); ``#`` lines and blank lines ignored. Default
  :data:`DEFAULT_TEMPLATES`.

:func:`check_classes` validates all three without reading any image (the workflow runs it before
any job starts); :func:`read_classes` then builds the ``zeroshot`` benchmark and, with a
taxonomy, the ``taxonomy`` one that the evaluation's hierarchy metrics read.
"""
from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from hyplib.tree import Tree

#: Prompts when no templates file is given: generic enough for photographs, drawings and glyphs.
DEFAULT_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a {}.")
#: The root added above several top-level taxonomy nodes.
ROOT = "__root__"
IMAGE_EXT = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def class_folders(root) -> list[Path]:
    """The class folders under ``root`` (sorted by name); ValueError unless there are two or more."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"class folder root not found: {root}")
    folders = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if len(folders) < 2:
        raise ValueError(f"{root} holds {len(folders)} class folder(s); zero-shot needs at least two "
                         "(one folder per class, images inside)")
    return folders


def display_name(class_id: str) -> str:
    """Prompt name of a folder: ``_`` and ``-`` as spaces."""
    return " ".join(class_id.replace("_", " ").replace("-", " ").split())


def read_taxonomy(path) -> tuple[dict[str, str | None], dict[str, str]]:
    """Parse a taxonomy file (module docstring) -> ``(parent, names)``.

    Raises ValueError naming the file and line of a malformed row, a node given two parents or
    its own parent; cycles are caught by :class:`hyplib.tree.Tree`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"taxonomy file not found: {path}")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    parent: dict[str, str | None] = {}
    names: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for line_no, row in enumerate(csv.reader(fh, delimiter=delimiter), start=1):
            cells = [c.strip() for c in row]
            if not cells or not any(cells) or cells[0].startswith("#"):
                continue
            if line_no == 1 and [c.lower() for c in cells[:2]] == ["child", "parent"]:
                continue
            if len(cells) not in (2, 3) or not cells[0]:
                raise ValueError(f"{path}:{line_no}: expected 'child,parent' or 'child,parent,name', got {row}")
            child, par = cells[0], cells[1] or None
            if par == child:
                raise ValueError(f"{path}:{line_no}: node {child!r} is its own parent")
            if child in parent and parent[child] != par:
                raise ValueError(f"{path}:{line_no}: node {child!r} has two parents, {parent[child]!r} and {par!r}")
            parent[child] = par
            if len(cells) == 3 and cells[2]:
                names[child] = cells[2]
    if not parent:
        raise ValueError(f"{path}: no rows")
    for par in [p for p in parent.values() if p is not None]:
        parent.setdefault(par, None)  # a node named only as a parent is top-level
    tops = [n for n, p in parent.items() if p is None]
    if len(tops) > 1:
        if ROOT in parent:
            raise ValueError(f"{path}: several top-level nodes {tops[:5]} and a node named {ROOT!r}")
        for n in tops:
            parent[n] = ROOT
        parent[ROOT] = None
    return parent, names


def read_templates(path) -> list[str]:
    """Prompt templates, one per line (module docstring); ValueError naming a line without ``{}``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"templates file not found: {path}")
    out = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        t = line.strip()
        if not t or t.startswith("#"):
            continue
        if "{}" not in t:
            raise ValueError(f"{path}:{line_no}: template {t!r} has no '{{}}' for the class name")
        out.append(t)
    if not out:
        raise ValueError(f"{path}: no templates")
    return out


def check_classes(root, taxonomy=None, templates=None) -> dict:
    """Validate class folders, taxonomy and templates without reading an image.

    Returns:
        ``{"class_ids", "classnames", "templates", "tree"}`` (``tree`` None without a taxonomy).

    Raises:
        ValueError: fewer than two class folders, a malformed taxonomy or templates file, or
            taxonomy leaves that are not exactly the class folders (both differences listed).
    """
    class_ids = [p.name for p in class_folders(root)]
    tree, names = None, {}
    if taxonomy is not None:
        parent, names = read_taxonomy(taxonomy)
        missing = [c for c in class_ids if c not in parent]
        if missing:
            raise ValueError(f"taxonomy {taxonomy}: {len(missing)} class folder(s) of {root} are not in it, "
                             f"e.g. {missing[:5]}")
        try:
            tree = Tree(parent=parent, names=names, leaves=class_ids)
        except (ValueError, KeyError, RecursionError) as err:
            leaves = set(parent) - {p for p in parent.values() if p is not None}
            internal = sorted(set(class_ids) - leaves)
            extra = sorted(leaves - set(class_ids))
            if internal or extra:
                raise ValueError(f"taxonomy {taxonomy}: its leaves must be exactly the class folders of {root}; "
                                 f"class folders that are internal nodes: {internal[:5]}, leaves without a "
                                 f"folder: {extra[:5]}") from None
            raise ValueError(f"taxonomy {taxonomy}: {err}") from None
    return {"class_ids": class_ids, "classnames": [names.get(c) or display_name(c) for c in class_ids],
            "templates": read_templates(templates) if templates is not None else list(DEFAULT_TEMPLATES),
            "tree": tree}


def read_classes(root, taxonomy=None, templates=None, *, image_size: int = 224, per_class: int | None = None,
                 skipped: Counter | None = None, progress: bool = False) -> tuple[dict, dict]:
    """Class folders -> the ``zeroshot`` benchmark (labels index the sorted class ids); with a
    taxonomy its meta also holds ``taxonomy`` (``parent``, ``names``, ``leaves``), which
    :func:`hyplib.data.real.prepare_real` writes as the ``taxonomy`` benchmark.

    Images are resized and centre-cropped as ImageNet's (:func:`hyplib.data.readers.read_imagenet`);
    with ``skipped`` an unreadable one is counted (``bad_image``) instead of raising, and an empty
    class folder is counted as ``empty_class``.
    """
    from .readers import labelled_images

    info = check_classes(root, taxonomy, templates)
    items = []
    for label, cid in enumerate(info["class_ids"]):
        files = sorted(f for f in (Path(root) / cid).iterdir() if f.suffix.lower() in IMAGE_EXT)[:per_class]
        if not files and skipped is not None:
            skipped["empty_class"] += 1
        items += [(f, label) for f in files]
    meta = {"classnames": info["classnames"], "class_ids": info["class_ids"], "templates": info["templates"]}
    if info["tree"] is not None:
        t = info["tree"]
        meta["taxonomy"] = {"parent": dict(t.parent), "names": dict(t.names), "leaves": list(t.leaves)}
    return labelled_images(items, image_size, root, skipped, progress, "classes"), meta
