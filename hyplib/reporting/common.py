"""Shared pieces of the tables: the metric columns, formatting, run grouping and the verdict rules.

Verdicts (:func:`beats`, :func:`about_equal`, :func:`near`, :func:`sign_of`) return
``(verdict, reason)``; every claim is decided ``yes`` or ``no`` once its arms have seeds to
compare. The noise scale is the seeds' spread: ``sqrt(s_a^2 + s_b^2)`` for two groups, ``s``
against a fixed value, sample standard deviations (ddof=1) over seeds. An arm with one seed takes
the other arm's spread; where every arm has one seed, a caller may pass ``noise``, the seed spread
of the same metric measured on the main runs. Then:

* "A beats B" and "the mean has the expected sign": ``yes`` beyond the spread in the claimed
  direction; ``no`` otherwise, the reason saying "not shown" when the difference is within the
  spread (the claim does not reproduce at this scale);
* "A is about equal to B" / "near a value": ``yes`` within the tolerance or within the spread
  (indistinguishable here); ``no`` beyond both.

``inconclusive`` is left only for what cannot be measured: no runs, or one seed per arm with no
noise scale. :data:`NOT_REACHED` marks a conditional claim whose condition the runs never reached.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from hyplib.figures.runs import Run, as_runs, seed_stats

__all__ = ["MAIN_METRICS", "EQUAL_TOL", "DEFAULT_TOL", "SMALL_EFFECT", "fmt", "runs_and_metrics", "values",
           "by_method", "not_available", "inconclusive", "NOT_REACHED", "beats", "about_equal", "near", "sign_of",
           "combine"]

MAIN_METRICS: dict[str, tuple[str, bool]] = {
    "zeroshot/mean_per_class_acc": ("ZS acc", True), "zeroshot/top1": ("ZS top-1", True),
    "probe/acc": ("probe", True),
    "retrieval/i2t_R@1": ("I2T R@1", True), "retrieval/i2t_R@5": ("I2T R@5", True),
    "retrieval/t2i_R@1": ("T2I R@1", True), "retrieval/t2i_R@5": ("T2I R@5", True),
    "hierarchy/reference/TIE": ("TIE", False), "hierarchy/reference/LCA": ("LCA", False),
    "hierarchy/reference/J": ("J", True), "pep/auc": ("PEP AUC", True), "pep/ap": ("PEP AP", True),
    "chains/depth1_acc": ("chain d1", True), "chains/depth2_acc": ("chain d2", True),
    "chains/text_depth2_acc": ("text chain", True), "composition/acc": ("compos.", True),
    "hierarcaps/tau": ("HC tau", True),
}
#: "About equal" tolerance, one point: 0.01 for fractions, 0.1 edges for tree distances.
EQUAL_TOL = {"hierarchy/reference/TIE": 0.1, "hierarchy/reference/LCA": 0.1}
DEFAULT_TOL = 0.01
SMALL_EFFECT = 0.2  # |Cohen's d| below this is "no split" (a conventional small effect)


# --------------------------------------------------------------------------- formatting
def fmt(mean: float, std: float, n: int, digits: int = 3) -> str:
    """``"0.512 ± 0.013 (n=3)"``; without the std for one seed; ``"n/a"`` with none."""
    if n == 0 or not math.isfinite(mean):
        return "n/a"
    if n < 2 or not math.isfinite(std):
        return f"{mean:.{digits}f} (n={n})"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={n})"


# --------------------------------------------------------------------------- inputs
def runs_and_metrics(runs, metrics, logs):
    """Run objects whose ``metrics``/``log`` come from the given dicts where those are not None."""
    runs = as_runs(runs)
    for r in runs:
        if metrics is not None:
            m = metrics.get(r.name, {})
            r.metrics = dict(m.get("metrics", m)) if isinstance(m, Mapping) else {}
            r.record = dict(m) if isinstance(m, Mapping) and "metrics" in m else {}
        if logs is not None:
            r.log = logs.get(r.name)
    return runs


def not_available(runs: Iterable[Run], protocol: str) -> str | None:
    """Why the data lacks ``protocol``: the reason its evaluation recorded (``skipped`` in
    metrics.json, starting "not available for this data") when every evaluated run recorded one;
    None when any run measured it or no run was evaluated."""
    from hyplib.evaluation.driver import NOT_AVAILABLE

    reasons = [r.record.get("skipped", {}).get(protocol) for r in runs if r.record]
    if reasons and all(isinstance(x, str) and x.startswith(NOT_AVAILABLE) for x in reasons):
        return reasons[0]
    return None


def values(group: Iterable[Run], key: str) -> list[float]:
    """``key`` of every run in ``group`` (NaN where missing)."""
    return [r.metric(key) for r in group]


def by_method(runs: list[Run], study: str = "main") -> dict[str, list[Run]]:
    """``{method: runs of study}``."""
    out: dict[str, list[Run]] = {}
    for r in runs:
        if study in r.study:
            out.setdefault(r.method, []).append(r)
    return out


# --------------------------------------------------------------------------- verdicts
#: The verdict of a conditional claim whose condition the runs never reached (the note gives the
#: measured trend): neither confirmed nor refuted at this budget.
NOT_REACHED = "not reached at this budget"


def inconclusive(why: str) -> tuple[str, str]:
    """``("inconclusive", why)``."""
    return "inconclusive", why


def _spreads(sa: float, na: int, sb: float, nb: float, noise: float | None) -> tuple[float, float, str] | None:
    """The seed spread of each arm and a note on where it came from; None when there is none."""
    if na >= 2 and nb >= 2:
        return sa, sb, ""
    if na >= 2 and nb == 1:
        return sa, sa, "; the one-seed arm takes the other arm's spread"
    if nb >= 2 and na == 1:
        return sb, sb, "; the one-seed arm takes the other arm's spread"
    if na >= 1 and nb >= 1 and noise is not None and math.isfinite(noise):
        return noise, noise, f"; one seed per arm: spread {noise:.3g} of the main runs"
    return None


def beats(a: list[float], b: list[float], higher_better: bool = True, noise: float | None = None) -> tuple[str, str]:
    """Does group ``a`` beat group ``b``? ``(verdict, reason)``."""
    (ma, sa, na), (mb, sb, nb) = seed_stats(a), seed_stats(b)
    spreads = _spreads(sa, na, sb, nb, noise)
    if spreads is None:
        return inconclusive(f"fewer than 2 seeds (n={na} vs {nb})")
    sa, sb, origin = spreads
    diff = (ma - mb) if higher_better else (mb - ma)
    spread = math.hypot(sa, sb)
    if abs(diff) <= spread:
        return "no", f"not shown: difference {diff:+.3g} within the seeds' spread {spread:.3g}{origin}"
    return ("yes" if diff > 0 else "no"), f"difference {diff:+.3g} (spread {spread:.3g}){origin}"


def about_equal(a: list[float], b: list[float], tol: float = DEFAULT_TOL,
                noise: float | None = None) -> tuple[str, str]:
    """Are groups ``a`` and ``b`` within ``tol`` (or their seeds' spread) of each other?"""
    (ma, sa, na), (mb, sb, nb) = seed_stats(a), seed_stats(b)
    spreads = _spreads(sa, na, sb, nb, noise)
    if spreads is None:
        return inconclusive(f"fewer than 2 seeds (n={na} vs {nb})")
    sa, sb, origin = spreads
    diff, spread = abs(ma - mb), math.hypot(sa, sb)
    if diff <= tol:
        return "yes", f"|difference| {diff:.3g} <= tolerance {tol:g}"
    if diff > spread:
        return "no", f"|difference| {diff:.3g} > tolerance {tol:g} and spread {spread:.3g}{origin}"
    return "yes", f"indistinguishable: |difference| {diff:.3g} within the seeds' spread {spread:.3g}{origin}"


def _one_sample_spread(values: list[float], noise: float | None) -> tuple[float, float, int, str] | None:
    m, s, n = seed_stats(values)
    if n >= 2:
        return m, s, n, ""
    if n == 1 and noise is not None and math.isfinite(noise):
        return m, noise, n, f"; one seed: spread {noise:.3g} of the main runs"
    return None


def near(values: list[float], target: float, tol: float = DEFAULT_TOL, noise: float | None = None) -> tuple[str, str]:
    """Is the mean of ``values`` within ``tol`` (or the seeds' spread) of ``target``?"""
    got = _one_sample_spread(values, noise)
    if got is None:
        return inconclusive(f"fewer than 2 seeds (n={seed_stats(values)[2]})")
    m, s, _, origin = got
    diff = abs(m - target)
    if diff <= tol:
        return "yes", f"|mean - {target:g}| {diff:.3g} <= tolerance {tol:g}"
    if diff > s:
        return "no", f"|mean - {target:g}| {diff:.3g} > tolerance {tol:g} and spread {s:.3g}{origin}"
    return "yes", f"indistinguishable: |mean - {target:g}| {diff:.3g} within the seeds' spread {s:.3g}{origin}"


def sign_of(values: list[float], expect: str, noise: float | None = None) -> tuple[str, str]:
    """Is the mean of ``values`` ``"negative"``/``"positive"`` beyond its seeds' spread?"""
    got = _one_sample_spread(values, noise)
    if got is None:
        return inconclusive(f"fewer than 2 seeds (n={seed_stats(values)[2]})")
    m, s, _, origin = got
    if abs(m) <= s:
        return "no", f"not shown: |mean| {abs(m):.3g} within the seeds' spread {s:.3g}{origin}"
    ok = m < 0 if expect == "negative" else m > 0
    return ("yes" if ok else "no"), f"mean {m:+.3g} (spread {s:.3g}){origin}"


def combine(verdicts: Iterable[str]) -> str:
    """All ``yes`` -> yes; any ``no`` -> no; yes and :data:`NOT_REACHED` only -> not reached;
    otherwise inconclusive (also for no parts)."""
    v = list(verdicts)
    if v and all(x == "yes" for x in v):
        return "yes"
    if "no" in v:
        return "no"
    if v and set(v) <= {"yes", NOT_REACHED}:
        return NOT_REACHED
    return "inconclusive"
