"""Figure ``traversals``.

Root traversals: the HierarCaps caption nearest to each point on the geodesic image -> root.
"""
from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from hyplib import plotting
from hyplib.data.benchmarks import load_benchmark
from hyplib.figures import _style as S
from hyplib.figures.pick import main_runs
from hyplib.figures.runs import group_by_config

NAME = "traversals"
CAPTION = (
    "Root traversals: for the first HierarCaps images (top), the caption nearest to each of the "
    "points on the geodesic from the image (step 0) to the root (last step), among all HierarCaps "
    "captions at every level ([L0] most generic .. [L3] most specific); repeated retrievals are "
    "merged into step ranges. One row per method, first seed. A hierarchy-aware space retrieves "
    "increasingly generic captions towards the root.")
#: The workflow's runs this figure reads: by study tag and method (None: every method).
STUDIES = ("main",)
METHODS = ("meru", "hycoclip")
#: Released checkpoints: (methods, ``data.paths`` key of the benchmark it reads), or None.
RELEASED = (("meru", "hycoclip", "atmg", "phyclip"), "hierarcaps")


def inputs(runs, bench_dir, *, n_images: int = 3) -> dict:
    hc = load_benchmark(bench_dir, "hierarcaps")
    chains = [list(c) for c in hc["captions"]]
    paths = {}
    hyperbolic = ["meru", "hycoclip", "argent", "atmg", "phyclip"]
    for label, group in group_by_config(main_runs(runs, hyperbolic)).items():
        found = [r.arrays["traversal_idx"] for r in group if "traversal_idx" in r.arrays]
        if found:
            paths[label] = np.asarray(found[0])[:n_images]
    return {"captions": [s for c in chains for s in c], "paths": paths,
            "levels": np.tile(np.arange(len(chains[0])), len(chains)) if chains else None,
            "thumbnails": np.asarray(hc["images"][:n_images]), "n_images": n_images}


def collapse_steps(row: Sequence[int]) -> list[tuple[int, int, int]]:
    """Runs of equal consecutive indices: ``[(first step, last step, index), ...]``."""
    out: list[tuple[int, int, int]] = []
    for s, idx in enumerate(int(i) for i in row):
        if out and out[-1][2] == idx:
            out[-1] = (out[-1][0], s, idx)
        else:
            out.append((s, s, idx))
    return out


def _cell_text(row, captions: Sequence[str], levels, width: int) -> str:
    lines = []
    for a, b, idx in collapse_steps(row):
        steps = f"{a}" if a == b else f"{a}-{b}"
        if idx < 0:
            text = "(no text whose cone holds the image)"
        else:
            text = captions[idx]
            if levels is not None:
                text = f"[L{int(levels[idx])}] {text}"
        body = textwrap.fill(text, width=width, subsequent_indent="      ")
        lines.append(f"{steps:>5} {body}")
    return "\n".join(lines)


def draw(captions: Sequence[str], paths: Mapping[str, np.ndarray], *,
               levels: Sequence[int] | None = None, thumbnails: np.ndarray | None = None,
               n_images: int = 3, width: int = 34):
    """Retrieved captions per traversal step for ``n_images`` images, one row per method.

    Args:
        captions: the candidate texts (M,) the indices point into.
        paths: ``{method label: (N, S) int}`` nearest text at each of S steps, step 0 at the
            image, step S-1 at the root; -1 = no candidate (cone filter).
        levels: (M,) optional HierarCaps level of each caption (0 generic .. 3 specific).
        thumbnails: (N, H, W, 3) uint8 images shown above their column, or None.
        n_images: columns (the first images).
        width: wrap captions at this many characters.
    """
    plotting.set_style()
    n = max(1, min([n_images] + [len(p) for p in paths.values()]) if paths else 1)
    cells = {label: [_cell_text(np.asarray(idx)[j], captions, levels, width) for j in range(n)]
             for label, idx in paths.items()}
    # Row heights follow the longest cell of the row (about 0.13 inch per line of 6.5 pt text).
    heights = ([1.1] if thumbnails is not None else []) + [
        0.3 + 0.13 * max(c.count("\n") + 1 for c in row) for row in cells.values()]
    fig = plt.figure(figsize=(3.6 * n, max(1.5, sum(heights) + 0.3)))
    if not paths:
        ax = fig.add_subplot(1, 1, 1)
        S.empty(ax, "no traversals (no hyperbolic run)")
        return fig
    grid = fig.add_gridspec(len(heights), n, height_ratios=heights, hspace=0.12, wspace=0.05)
    r0 = 0
    if thumbnails is not None:
        for j in range(n):
            ax = fig.add_subplot(grid[0, j])
            ax.imshow(np.asarray(thumbnails[j]), interpolation="nearest")
            ax.set_title(f"image {j}", fontsize=9)
            ax.set_axis_off()
        r0 = 1
    for i, (label, row) in enumerate(cells.items()):
        for j, text in enumerate(row):
            ax = fig.add_subplot(grid[r0 + i, j])
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ("top", "right", "left", "bottom"):
                ax.spines[side].set_visible(True)
                ax.spines[side].set_color("0.8")
            ax.text(0.02, 0.95, text, ha="left", va="top", transform=ax.transAxes, fontsize=6.5,
                    family="monospace")
            if j == 0:
                ax.set_ylabel(f"{label}\nstep: caption", fontsize=8, color=S.color_for(label, i))
    return fig
