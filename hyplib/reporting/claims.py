"""The claims table: one row per claim of docs/METHODS.md section 5, measured on the runs.

Each row says what was measured, its values (mean ± std over seeds, n), the direction observed
and whether the claim holds here (rules in :mod:`hyplib.reporting.common`). A claim with several
parts (metrics or methods) holds when every part does, fails when any part fails, and is
inconclusive otherwise. A claim whose benchmark the data lacks (:data:`CLAIM_PROTOCOLS`; e.g.
hierarchy metrics without a taxonomy) holds ``n/a`` and its note says "not available for this
data" with the reason. Nothing is written in: every verdict comes from the metrics and logs.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from hyplib.figures.runs import Run, method_label, seed_stats, settings
from hyplib.reporting.common import (
    DEFAULT_TOL,
    EQUAL_TOL,
    MAIN_METRICS,
    NOT_REACHED,
    SMALL_EFFECT,
    about_equal,
    beats,
    by_method,
    combine,
    fmt,
    inconclusive,
    near,
    not_available,
    runs_and_metrics,
    sign_of,
    values,
)

__all__ = ["claims_table", "CLAIM_COLUMNS"]

CLAIM_COLUMNS = ["id", "claim", "measured", "values", "direction", "holds", "note"]
#: Claim 3b: the least share of the way from the initial curvature to the floor that every seed
#: must cover for the drift to count as under way ("not reached at this budget") rather than absent.
MIN_CURV_MOVE = 0.01
#: The protocol each claim reads. Where the data lacks it (every evaluated run recorded it as
#: "not available for this data"), the row says so: values and direction ``n/a``, holds ``n/a``,
#: the reason in the note.
CLAIM_PROTOCOLS = {"1a": "diagnostics", "1b": "diagnostics", "2a": "hierarchy", "2b": "hierarchy",
                   "2c": "hierarchy", "3a": "zeroshot", "4": "chains", "5a": "zeroshot", "5b": "zeroshot",
                   "5c": "composition", "6a": "pep"}


def _row(cid: str, claim: str, measured: str, values: str, direction: str, holds: str, note: str) -> dict:
    return {"id": cid, "claim": claim, "measured": measured, "values": values, "direction": direction,
            "holds": holds, "note": note}


def _compare_row(cid, claim, groups, a, b, keys, mode="beats"):
    """One row comparing method ``a`` to ``b`` on several metrics (``mode``: beats | equal)."""
    la, lb = method_label(a), method_label(b)
    ga, gb = groups.get(a, []), groups.get(b, [])
    vals, dirs, parts, notes = [], [], [], []
    for key in keys:
        name, higher = MAIN_METRICS.get(key, (key, True))
        va, vb = values(ga, key), values(gb, key)
        (ma, sa, na), (mb, sb, nb) = seed_stats(va), seed_stats(vb)
        vals.append(f"{name}: {la} {fmt(ma, sa, na)} vs {lb} {fmt(mb, sb, nb)}")
        if na == 0 or nb == 0:
            parts.append("inconclusive")
            notes.append(f"{name}: no runs with this metric")
            continue
        better = (ma > mb) == higher
        dirs.append(f"{name}: {la} {'better' if better else 'worse' if ma != mb else 'equal'}")
        if mode == "beats":
            v, why = beats(va, vb, higher)
        else:
            v, why = about_equal(va, vb, EQUAL_TOL.get(key, DEFAULT_TOL))
        parts.append(v)
        notes.append(f"{name}: {v} ({why})")
    return _row(cid, claim, ", ".join(MAIN_METRICS.get(k, (k,))[0] for k in keys), "; ".join(vals),
                "; ".join(dirs) or "n/a", combine(parts), "; ".join(notes))


# --------------------------------------------------------------------------- claims
def _effect_size(run: Run) -> float:
    """Cohen's d of text vs image distance to the root within one run (pooled within-run std)."""
    mt, mi = run.metric("diagnostics/radius/text/mean"), run.metric("diagnostics/radius/image/mean")
    st, si = run.metric("diagnostics/radius/text/std"), run.metric("diagnostics/radius/image/std")
    pooled = math.sqrt((st * st + si * si) / 2.0)
    if not math.isfinite(mt - mi):
        return float("nan")
    if pooled == 0:  # every radius equal (CLIP's unit vectors): no split at all, or an infinite one
        return 0.0 if mt == mi else math.copysign(math.inf, mt - mi)
    return (mt - mi) / pooled


def _claim1(groups) -> list[dict]:
    meru = groups.get("meru", [])
    diff = values(meru, "diagnostics/radius/text_minus_image")
    m, s, n = seed_stats(diff)
    v, why = sign_of(diff, "negative") if n else inconclusive("no MERU run with radius diagnostics")
    d = seed_stats([_effect_size(r) for r in meru])
    rows = [_row("1a", "MERU puts texts closer to the root than images",
                 "mean text radius - mean image radius (MERU)", fmt(m, s, n),
                 "n/a" if not n else ("texts closer" if m < 0 else "images closer"), v,
                 f"{why}; within-run effect size d = {fmt(*d)}")]
    clip = groups.get("clip", [])
    eff = [_effect_size(r) for r in clip]
    me, se, ne = seed_stats(eff)
    if ne < 2:
        v, why = inconclusive(f"fewer than 2 seeds (n={ne})")
    elif abs(me) <= SMALL_EFFECT:
        v, why = "yes", f"|d| {abs(me):.3g} <= {SMALL_EFFECT}"
    elif abs(me) - se > SMALL_EFFECT:
        v, why = "no", f"|d| {abs(me):.3g} > {SMALL_EFFECT} beyond the spread {se:.3g}"
    else:
        v, why = "no", f"not shown: |d| {abs(me):.3g} > {SMALL_EFFECT}, within the spread {se:.3g} of it"
    unit = clip and all(r.metric("diagnostics/radius/text/std") == 0 == r.metric(
        "diagnostics/radius/image/std") for r in clip)
    note = why + ("; CLIP's embeddings are unit vectors (|x| = 1 for all), so this split is zero by "
                  "construction; the distance_to_root figure shows the angle to the centroid" if unit else "")
    rows.append(_row("1b", "CLIP shows no text/image split", "effect size d of text vs image radius (CLIP)",
                     fmt(me, se, ne), "n/a" if not ne else f"d = {me:+.2f}", v, note))
    return rows


#: A claim read from zero-shot predictions needs accuracy of at least this many times chance
#: (30 classes, 600 images: 2x chance is about 4.5 binomial standard errors above a guess).
SIGNAL_OVER_CHANCE = 2.0


def zeroshot_signal(runs: list[Run]) -> tuple[bool, str]:
    """Is the zero-shot accuracy of ``runs`` far enough above chance to compare predictions?

    Returns ``(ok, note)``; ``ok`` is True when the metrics carry no ``zeroshot/chance``
    (nothing to check against) or the mean accuracy is >= ``SIGNAL_OVER_CHANCE`` x chance.
    """
    acc = [a for a in values(runs, "zeroshot/mean_per_class_acc") if math.isfinite(a)]
    chance = [c for c in values(runs, "zeroshot/chance") if math.isfinite(c)]
    if not acc or not chance:
        return True, ""
    mean_acc, level = float(np.mean(acc)), float(np.mean(chance))
    if mean_acc >= SIGNAL_OVER_CHANCE * level:
        return True, ""
    return False, (f"zero-shot accuracy {mean_acc:.3f} is under {SIGNAL_OVER_CHANCE:g}x chance "
                   f"({level:.3f}): the predictions compared here are close to guesses")


def _guard_zeroshot(row: dict, runs: list[Run]) -> dict:
    """Turn a verdict built on zero-shot predictions into 'inconclusive' when they are guesses."""
    ok, note = zeroshot_signal(runs)
    if ok:
        return row
    return {**row, "holds": "inconclusive", "note": f"{note}; without that: {row['holds']} ({row['note']})"}


def _claim2(groups) -> list[dict]:
    keys = ["hierarchy/reference/TIE", "hierarchy/reference/LCA", "hierarchy/reference/J"]
    pairs = [("2a", "HyCoCLIP beats MERU on TIE/LCA/J", "hycoclip", "meru", "beats"),
             ("2b", "HyCoCLIP beats CLIP on TIE/LCA/J", "hycoclip", "clip", "beats"),
             ("2c", "MERU is about equal to CLIP on TIE/LCA/J", "meru", "clip", "equal")]
    return [_guard_zeroshot(_compare_row(cid, claim, groups, a, b, keys, mode),
                            groups.get(a, []) + groups.get(b, []))
            for cid, claim, a, b, mode in pairs]


def _drops(runs: list[Run], key: str, threshold: float):
    """Per-seed drop of ``key`` from the lowest fixed curvature to the mean over ``c >= threshold``."""
    by_c: dict[float, dict[int, float]] = {}
    for r in runs:
        cfg = settings(r)
        if cfg.get("learn_curv", True):
            continue
        by_c.setdefault(float(cfg["curv_init"]), {})[r.seed] = r.metric(key)
    low = [c for c in by_c if c < threshold]
    high = sorted(c for c in by_c if c >= threshold)
    if not low or not high:
        return None
    base = by_c[min(low)]
    diverged = sum(not math.isfinite(by_c[c].get(s, float("nan"))) for c in high for s in base)
    drops = []
    for seed, b in base.items():
        hs = [by_c[c].get(seed, float("nan")) for c in high]
        if math.isfinite(b) and all(math.isfinite(h) for h in hs):
            drops.append(b - float(np.mean(hs)))
    return {"base": min(low), "high": high, "drops": drops, "diverged": diverged}


def _claim3a(runs: list[Run], threshold: float = 0.5) -> dict:
    key = "zeroshot/mean_per_class_acc"
    curv = [r for r in runs if "curvature" in r.study]
    res = {m: _drops([r for r in curv if r.method == m], key, threshold) for m in ("meru", "atmg")}
    claim = "At fixed curvature >= 0.5 MERU degrades or diverges while ATMG stays flat"
    measured = f"zero-shot acc at the lowest fixed c minus mean acc at c >= {threshold}"
    if any(v is None for v in res.values()):
        return _row("3a", claim, measured, "n/a", "n/a", "inconclusive",
                    f"needs fixed-curvature runs below and at/above {threshold} for MERU and ATMG")
    # One seed per curvature: a drop is a difference of two runs, so its noise is sqrt(2) x the seed
    # spread of the same method's zero-shot accuracy over the main runs.
    main = by_method(runs, "main")
    noise = {m: math.sqrt(2) * seed_stats(values(main.get(m, []), key))[1] for m in res}
    mv, mwhy = ("yes", "diverged") if res["meru"]["diverged"] else sign_of(res["meru"]["drops"], "positive",
                                                                          noise["meru"])
    av, awhy = ("no", "diverged") if res["atmg"]["diverged"] else near(res["atmg"]["drops"], 0.0, DEFAULT_TOL,
                                                                      noise["atmg"])
    vals, dirs = [], []
    for m, r in res.items():
        mean, std, n = seed_stats(r["drops"])
        vals.append(f"{method_label(m)} drop {fmt(mean, std, n)}, diverged {r['diverged']}")
        dirs.append(f"{method_label(m)} accuracy change {-mean:+.3f}" if n else f"{method_label(m)} n/a")
    note = (f"base c = {res['meru']['base']:g}, high c = {res['meru']['high']}; MERU degrades: {mv} ({mwhy}); "
            f"ATMG flat (within {DEFAULT_TOL}): {av} ({awhy})")
    # The lowest-curvature runs are the reference: if they sit at chance, a drop cannot show.
    reference = [r for r in curv if float(settings(r).get("curv_init", math.nan)) == res["meru"]["base"]]
    return _guard_zeroshot(_row("3a", claim, measured, "; ".join(vals), "; ".join(dirs), combine([mv, av]), note),
                           reference)


def _last_curv(run: Run) -> float:
    log = run.log
    if log is not None and "curv" in log:
        s = pd.to_numeric(log["curv"], errors="coerce").dropna()
        if len(s):
            return float(s.iloc[-1])
    v = run.metric("diagnostics/traj/curv/last")
    return v if math.isfinite(v) else run.metric("diagnostics/curv_mean")


def _steps(runs: list[Run]) -> str:
    """The training steps the runs' logs record (``"?"`` without logs)."""
    done = [int(pd.to_numeric(r.log["step"], errors="coerce").max()) for r in runs
            if r.log is not None and "step" in r.log and len(r.log)]
    return "/".join(str(n) for n in sorted(set(done))) or "?"


def _claim3b(groups) -> dict:
    meru = [r for r in groups.get("meru", []) if settings(r).get("learn_curv", True)]
    claim = "With learnable curvature MERU drifts to the floor"
    measured = "(c_last - floor) / (c_init - floor)"
    pos, lasts, floor, init = [], [], float("nan"), float("nan")
    for r in meru:
        cfg = settings(r)
        floor, init = float(cfg["curv_clamp"][0]), float(cfg["curv_init"])
        last = _last_curv(r)
        lasts.append(last)
        pos.append((last - floor) / (init - floor) if init != floor else float("nan"))
    m, s, n = seed_stats(pos)
    if n < 2:
        v, why = inconclusive(f"fewer than 2 seeds with a curvature trajectory (n={n})")
    elif m <= 0.1:
        v, why = "yes", f"within 10% of the way from the floor (position {m:.3g})"
    elif not all(p <= 1 - MIN_CURV_MOVE for p in pos if math.isfinite(p)):
        v, why = "no", (f"curvature did not move down on every seed (position {m:.3g} ± {s:.3g}; "
                        f"each seed must move at least {100 * MIN_CURV_MOVE:g}% of the way)")
    else:
        v, why = NOT_REACHED, (f"moving down on every seed, {100 * (1 - m):.0f}% of the way to the floor after "
                               f"{_steps(meru)} steps; the floor is not reached at this budget")
    lm, ls, ln = seed_stats(lasts)
    vals = f"position {fmt(m, s, n)}; c_last {fmt(lm, ls, ln)}; floor {floor:g}, init {init:g}"
    direction = "n/a" if not n else ("down" if m < 1 else "up" if m > 1 else "flat")
    return _row("3b", claim, measured, vals, direction, v, why)


def _claim5(runs: list[Run], groups) -> list[dict]:
    key = "zeroshot/mean_per_class_acc"
    configs: dict[tuple, list[Run]] = {}
    for r in runs:
        if r.method == "phyclip" and {"main", "phyclip_ablation"} & set(r.study):
            cfg = settings(r)
            configs.setdefault((cfg.get("k"), cfg.get("how")), []).append(r)
    ref = [r for (k, how), g in configs.items() if how == "l1" for r in g if r.variant in (None, "", "base")]
    linf = [r for (k, how), g in configs.items() if how == "linf" for r in g]
    k1 = [r for (k, how), g in configs.items() if k == 1 and how != "linf" for r in g]
    others = {f"k={k}, {how}": g for (k, how), g in configs.items() if k != 1 and how != "linf"}
    (mr, sr, nr), (ml, sl, nl) = seed_stats(values(ref, key)), seed_stats(values(linf, key))
    if nr and nl:
        v, why = beats(values(ref, key), values(linf, key))
    else:
        v, why = inconclusive("needs l1 and linf runs")
    # A collapse shows as a fall from the l1 reference, which needs the reference above chance.
    rows = [_guard_zeroshot(_row("5a", "PHyCLIP: linf combination collapses", "zero-shot acc, l1 (base) vs linf",
                                 f"l1 {fmt(mr, sr, nr)}; linf {fmt(ml, sl, nl)}",
                                 "n/a" if not (nr and nl) else ("linf lower" if ml < mr else "linf not lower"),
                                 v, why), ref)]
    m1 = seed_stats(values(k1, key))
    parts = {name: beats(values(g, key), values(k1, key))[0] for name, g in others.items()}
    vals = [f"k=1 {fmt(*m1)}"] + [f"{name} {fmt(*seed_stats(values(g, key)))}" for name, g in others.items()]
    lower = [name for name, g in others.items() if seed_stats(values(g, key))[0] < m1[0]]
    have = bool(m1[2]) and bool(others)
    rows.append(_guard_zeroshot(_row(
        "5b", "PHyCLIP: k=1 is the weakest configuration", "zero-shot acc per configuration", "; ".join(vals),
        "n/a" if not have else ("k=1 lowest" if not lower else f"lower than k=1: {lower}"),
        combine(parts.values()) if have else "inconclusive",
        f"other configuration beats k=1: {parts}" if have else "needs k=1 runs and other configurations"),
        [r for g in others.values() for r in g]))
    rows.append(_compare_row("5c", "PHyCLIP scores better on composition than HyCoCLIP", groups, "phyclip",
                             "hycoclip", ["composition/acc"]))
    return rows


def _collapse(run: Run) -> tuple[bool, float] | None:
    """(median text radius inside the norm boundary, final/peak entailment loss) of one run."""
    c, med = run.metric("diagnostics/curv_mean"), run.metric("diagnostics/radius/text/median")
    if run.log is None or "entailment" not in run.log or not (math.isfinite(c) and math.isfinite(med)):
        return None
    loss = pd.to_numeric(run.log["entailment"], errors="coerce").dropna().to_numpy()
    if loss.size == 0:
        return None
    tail = float(np.mean(loss[-max(1, loss.size // 10):]))
    return med <= _boundary_radius(run), tail / max(float(loss.max()), 1e-12)


def _boundary_radius(run: Run) -> float:
    """Distance to the root of the norm boundary ``|x| = 2K/sqrt(c)``: ``asinh(2K)/sqrt(c)``."""
    k = float(settings(run).get("min_radius", 0.1))
    return math.asinh(2 * k) / math.sqrt(run.metric("diagnostics/curv_mean"))


def _claim6(groups) -> list[dict]:
    rows = [_compare_row("6a", "ARGENT beats HyCoCLIP on PEP", groups, "argent", "hycoclip",
                         ["pep/auc", "pep/ap"])]
    parts, vals, dirs = [], [], []
    for m in ("meru", "hycoclip"):
        res = [x for x in (_collapse(r) for r in groups.get(m, [])) if x is not None]
        if len(res) < 2:
            parts.append("inconclusive")
            vals.append(f"{method_label(m)}: {len(res)} seed(s) with log and radii")
            continue
        inside = [a for a, _ in res]
        ratio = seed_stats([b for _, b in res])
        vals.append(f"{method_label(m)}: parents inside {sum(inside)}/{len(res)} seeds; "
                    f"final/peak loss {fmt(*ratio)}")
        dirs.append(f"{method_label(m)}: loss at {100 * ratio[0]:.0f}% of peak, "
                    f"parents {'inside' if all(inside) else 'outside' if not any(inside) else 'mixed'}")
        zero = [b <= 0.05 for _, b in res]
        if all(inside) and all(zero):
            parts.append("yes")
        elif any(a and not z for a, z in zip(inside, zero)):
            parts.append("no")
        else:
            parts.append(NOT_REACHED)
    argent = [r for r in groups.get("argent", []) if math.isfinite(r.metric("diagnostics/curv_mean"))]
    a_in = [r.metric("diagnostics/radius/text/median") <= _boundary_radius(r) for r in argent]
    rows.append(_row("6b", "Plain entailment loss goes to zero once parents fall inside the norm boundary",
                     "median text radius vs asinh(2K)/sqrt(c); entailment loss (mean of last 10% of "
                     "steps) / peak",
                     "; ".join(vals), "; ".join(dirs) or "n/a", combine(parts),
                     f"per method (MERU, HyCoCLIP): {parts}; yes = parents inside and loss <= 5% of its "
                     "peak; not reached where parents stayed outside the boundary; for "
                     f"contrast, ARGENT's parents are inside in {sum(a_in)}/{len(a_in)} seeds"))
    return rows


def claims_table(runs, metrics: Mapping | None = None, logs: Mapping | None = None) -> pd.DataFrame:
    """One row per claim of docs/METHODS.md section 5 (see the module docstring for the rules).

    Args:
        runs: run specs (dicts with ``name, method, variant, seed, study, overrides``) or
            :class:`~hyplib.figures.runs.Run` objects (then their loaded metrics/logs are used).
        metrics: ``{run name: flat metrics dict}`` (or the metrics.json record); overrides the runs'.
        logs: ``{run name: training-log DataFrame}`` (curvature and entailment trajectories).

    Returns:
        DataFrame with columns ``id, claim, measured, values, direction, holds, note``.
    """
    runs = runs_and_metrics(runs, metrics, logs)
    groups = by_method(runs, "main")
    rows = [*_claim1(groups), *_claim2(groups), _claim3a(runs), _claim3b(groups),
            _compare_row("4", "ATMG orders whole/part chains far better than MERU", groups, "atmg", "meru",
                         ["chains/depth1_acc", "chains/depth2_acc"]),
            *_claim5(runs, groups), *_claim6(groups)]
    for row in rows:
        why = not_available(runs, CLAIM_PROTOCOLS[row["id"]]) if row["id"] in CLAIM_PROTOCOLS else None
        if why is not None:
            row.update(values="n/a", direction="n/a", holds="n/a", note=why)
    return pd.DataFrame(rows, columns=CLAIM_COLUMNS)
