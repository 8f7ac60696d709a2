"""The tables: aggregation over seeds against hand-computed values, the verdict rules, and the
claims table on synthetic metrics where each claim holds, fails, or cannot be decided."""
import math

import numpy as np
import pandas as pd
import pytest

from hyplib import reporting
from hyplib.figures.runs import seed_stats

CLAIM_IDS = ["1a", "1b", "2a", "2b", "2c", "3a", "3b", "4", "5a", "5b", "5c", "6a", "6b"]


# --------------------------------------------------------------------------- aggregation
def _spec(method, seed, study=("main",), variant="base", overrides=None):
    return {"name": f"{method}-{variant}-s{seed}", "method": method, "variant": variant, "seed": seed,
            "study": list(study), "overrides": dict(overrides or {}), "train_dir": None, "eval_dir": None}


def test_seed_stats_hand_computed():
    mean, std, n = seed_stats([0.1, 0.2, 0.4, float("nan")])
    assert n == 3
    assert mean == pytest.approx(0.7 / 3)
    # deviations -0.1333, -0.0333, 0.1667 -> squares sum 0.046667, / (n-1) = 0.023333
    assert std == pytest.approx(math.sqrt(0.046666666 / 2), rel=1e-6)
    assert math.isnan(seed_stats([0.5])[1]) and seed_stats([])[2] == 0


def test_main_comparison_mean_std_and_markdown():
    runs = [_spec("meru", s) for s in range(3)] + [_spec("clip", 0), _spec("meru", 9, study=("curvature",))]
    acc = {0: 0.1, 1: 0.2, 2: 0.4}
    metrics = {f"meru-base-s{s}": {"zeroshot/mean_per_class_acc": a, "hierarchy/reference/TIE": 2.0 + s}
               for s, a in acc.items()}
    metrics["clip-base-s0"] = {"metrics": {"zeroshot/mean_per_class_acc": 0.3}}  # a metrics.json record
    metrics["meru-base-s9"] = {"zeroshot/mean_per_class_acc": 0.99}  # not in the main study: left out
    table = reporting.main_comparison(runs, metrics)
    assert list(table.index) == ["CLIP", "MERU"]
    assert table.loc["MERU", "seeds"] == 3
    assert table.loc["MERU", "ZS acc mean"] == pytest.approx(0.233333, abs=1e-6)
    assert table.loc["MERU", "ZS acc std"] == pytest.approx(0.152753, abs=1e-6)
    assert table.loc["MERU", "TIE mean"] == pytest.approx(3.0)
    assert table.loc["MERU", "TIE std"] == pytest.approx(1.0)
    assert table.loc["CLIP", "ZS acc mean"] == pytest.approx(0.3)
    assert math.isnan(table.loc["CLIP", "ZS acc std"])
    assert math.isnan(table.loc["CLIP", "PEP AUC mean"])
    md = reporting.to_markdown(table)
    assert "0.233 ± 0.153" in md and "| CLIP" in md and "TIE ↓" in md


# --------------------------------------------------------------------------- verdict rules
@pytest.mark.parametrize("a,b,higher,expected", [
    ([0.6, 0.62, 0.61], [0.5, 0.51, 0.49], True, "yes"),
    ([0.5, 0.51, 0.49], [0.6, 0.62, 0.61], True, "no"),
    ([0.5, 0.51, 0.49], [0.6, 0.62, 0.61], False, "yes"),       # lower is better (TIE)
    ([0.50, 0.70], [0.55, 0.65], True, "no"),                     # within the spread: not shown
    ([0.9], [0.1, 0.2], True, "yes"),                             # one seed: the other arm's spread
    ([0.16], [0.1, 0.2], True, "no"),                             # 0.01 within hypot(0.0707, 0.0707)
    ([0.9], [0.1], True, "inconclusive"),                         # one seed each, no noise scale
])
def test_beats(a, b, higher, expected):
    assert reporting.beats(a, b, higher)[0] == expected


def test_one_seed_arms_use_the_main_runs_noise():
    # spread hypot(0.05, 0.05) = 0.0707: a 0.1 lead is beyond it, a 0.05 lead is not
    assert reporting.beats([0.6], [0.5], noise=0.05)[0] == "yes"
    verdict, why = reporting.beats([0.55], [0.5], noise=0.05)
    assert verdict == "no" and "not shown" in why and "0.0707" in why and "main runs" in why
    assert reporting.sign_of([0.2], "positive", noise=0.1)[0] == "yes"
    assert reporting.sign_of([0.05], "positive", noise=0.1)[0] == "no"
    assert reporting.near([0.05], 0.0, tol=0.01, noise=0.1)[0] == "yes"   # within the spread
    assert reporting.near([0.3], 0.0, tol=0.01, noise=0.1)[0] == "no"
    assert reporting.near([0.3], 0.0, tol=0.01)[0] == "inconclusive"      # no noise scale


def test_about_equal_near_sign_combine():
    assert reporting.about_equal([0.500, 0.502], [0.505, 0.503], tol=0.01)[0] == "yes"
    assert reporting.about_equal([0.50, 0.51], [0.60, 0.61], tol=0.01)[0] == "no"
    verdict, why = reporting.about_equal([0.40, 0.60], [0.65, 0.45], tol=0.01)
    assert verdict == "yes" and why.startswith("indistinguishable")
    assert reporting.near([0.001, -0.002], 0.0, tol=0.01)[0] == "yes"
    assert reporting.sign_of([-0.3, -0.35], "negative")[0] == "yes"
    assert reporting.sign_of([0.3, 0.35], "negative")[0] == "no"
    assert reporting.sign_of([-0.3, 0.35], "negative")[0] == "no"      # not shown within the spread
    assert reporting.combine(["yes", "yes"]) == "yes"
    assert reporting.combine(["yes", "no", "inconclusive"]) == "no"
    assert reporting.combine(["yes", "inconclusive"]) == "inconclusive"
    assert reporting.combine([]) == "inconclusive"
    assert reporting.combine(["yes", reporting.NOT_REACHED]) == reporting.NOT_REACHED
    assert reporting.combine(["no", reporting.NOT_REACHED]) == "no"


# --------------------------------------------------------------------------- claims
def _scenario(good: bool, seeds=(0, 1, 2)):
    """Runs, metrics and logs where every claim holds (``good``) or every claim fails."""
    runs, metrics, logs = [], {}, {}
    sign = 1.0 if good else -1.0

    def add(method, seed, values, study=("main",), variant="base", overrides=None, log=None):
        spec = _spec(method, seed, study, variant, overrides)
        runs.append(spec)
        noise = 0.001 * (seed - 1)
        metrics[spec["name"]] = {k: v + noise for k, v in values.items()}
        if log is not None:
            logs[spec["name"]] = log

    def entail_log(final):
        steps = np.arange(1, 21)
        return pd.DataFrame({"step": steps, "entailment": np.r_[np.linspace(0.5, final, 19), final],
                             "curv": np.linspace(1.0, 0.1 if good else 1.0, 20)})

    base = {"hierarchy/reference/TIE": 5.0, "hierarchy/reference/LCA": 3.0, "hierarchy/reference/J": 0.5,
            "diagnostics/curv_mean": 1.0, "diagnostics/radius/text/median": 0.1,
            "diagnostics/radius/text/std": 0.1, "diagnostics/radius/image/std": 0.1}
    for s in seeds:
        add("clip", s, {**base, "hierarchy/reference/J": 0.5 if good else 0.45,
                        "diagnostics/radius/text/mean": 1.0,
                        "diagnostics/radius/image/mean": 1.0 if good else 1.5})
        add("meru", s, {**base, "diagnostics/radius/text_minus_image": -0.4 * sign,
                        "diagnostics/radius/text/mean": 0.8, "diagnostics/radius/image/mean": 1.2,
                        "chains/depth1_acc": 0.5, "chains/depth2_acc": 0.2},
            log=entail_log(0.0 if good else 0.4))
        add("hycoclip", s, {**base, "hierarchy/reference/TIE": 5.0 - sign,
                            "hierarchy/reference/LCA": 3.0 - sign,
                            "hierarchy/reference/J": 0.5 + 0.1 * sign, "pep/auc": 0.7, "pep/ap": 0.7,
                            "composition/acc": 0.6}, log=entail_log(0.0 if good else 0.4))
        add("atmg", s, {"chains/depth1_acc": 0.5 + 0.3 * sign, "chains/depth2_acc": 0.2 + 0.3 * sign})
        add("argent", s, {"pep/auc": 0.7 + 0.1 * sign, "pep/ap": 0.7 + 0.1 * sign,
                          "diagnostics/curv_mean": 1.0,
                          "diagnostics/radius/text/median": 0.8})
        add("phyclip", s, {"zeroshot/mean_per_class_acc": 0.5, "composition/acc": 0.6 + 0.1 * sign},
            study=("main", "phyclip_ablation"))
        add("phyclip", s, {"zeroshot/mean_per_class_acc": 0.5 - 0.3 * sign}, ("phyclip_ablation",), "linf",
            {"how": "linf"})
        add("phyclip", s, {"zeroshot/mean_per_class_acc": 0.5 - 0.1 * sign}, ("phyclip_ablation",), "k1",
            {"k": 1})
        for c in (0.1, 0.5, 1.0):
            drop = 0.2 * (c - 0.1) if good else 0.0
            add("meru", s, {"zeroshot/mean_per_class_acc": 0.5 - drop}, ("curvature",), f"c{c:g}",
                {"curv_init": c, "learn_curv": False})
            atmg_acc = 0.5 if good else 0.5 - 0.2 * (c - 0.1)
            add("atmg", s, {"zeroshot/mean_per_class_acc": atmg_acc}, ("curvature",), f"c{c:g}",
                {"curv_init": c, "learn_curv": False})
    return runs, metrics, logs


def test_claims_all_hold():
    table = reporting.claims_table(*_scenario(good=True))
    assert list(table.columns) == reporting.CLAIM_COLUMNS
    assert list(table["id"]) == CLAIM_IDS
    verdicts = dict(zip(table["id"], table["holds"]))
    assert verdicts == {i: "yes" for i in CLAIM_IDS}, table[["id", "holds", "note"]]


def test_claims_all_fail():
    table = reporting.claims_table(*_scenario(good=False))
    verdicts = dict(zip(table["id"], table["holds"]))
    assert verdicts == {i: "no" for i in CLAIM_IDS}, table[["id", "holds", "note"]]


def test_claims_one_seed_is_inconclusive():
    table = reporting.claims_table(*_scenario(good=True, seeds=(0,)))
    assert set(table["holds"]) == {"inconclusive"}, table[["id", "holds", "note"]]
    assert table["note"].str.contains("fewer than 2 seeds").any()


def test_claims_without_runs_are_inconclusive_not_errors():
    table = reporting.claims_table([], {})
    assert list(table["id"]) == CLAIM_IDS and set(table["holds"]) == {"inconclusive"}


def test_claims_difference_within_spread_is_not_shown():
    runs, metrics, logs = _scenario(good=True)
    for s, j in zip((0, 1, 2), (0.3, 0.7, 0.5)):  # HyCoCLIP's J: MERU's mean, spread 0.2
        metrics[f"hycoclip-base-s{s}"]["hierarchy/reference/J"] = j
    table = reporting.claims_table(runs, metrics, logs).set_index("id")
    assert table.loc["2a", "holds"] == "no"
    assert "J: no (not shown: difference +0 within the seeds' spread 0.2)" in table.loc["2a", "note"]


def test_conditions_never_reached_say_so_with_the_trend():
    """3b with the curvature half-way to its floor, 6b with parents outside the boundary."""
    runs, metrics, logs = _scenario(good=True)
    for log in logs.values():
        log["curv"] = np.linspace(1.0, 0.55, len(log))
    for name, m in metrics.items():
        if name.startswith(("meru-base", "hycoclip-base")):
            m["diagnostics/radius/text/median"] = 5.0
    table = reporting.claims_table(runs, metrics, logs).set_index("id")
    assert table.loc["3b", "holds"] == reporting.NOT_REACHED
    assert "50% of the way to the floor after 20 steps" in table.loc["3b", "note"]
    assert table.loc["6b", "holds"] == reporting.NOT_REACHED


@pytest.mark.parametrize("last,holds,words", [
    ((0.931, 0.931, 0.932), reporting.NOT_REACHED, "8% of the way to the floor after 20 steps"),  # the default run's
    ((0.95, 0.95, 0.995), "no", "did not move down on every seed"),   # one seed moved 0.6% of the way
    ((1.0, 1.0, 1.0), "no", "did not move down on every seed"),
    ((1.2, 1.1, 1.3), "no", "did not move down on every seed"),       # up
    ((0.12, 0.15, 0.18), "yes", "within 10% of the way from the floor"),
])
def test_3b_reads_a_slow_drift_as_not_reached_and_no_drift_as_no(last, holds, words):
    """The curvature's position (c_last - 0.1) / (1 - 0.1) per seed decides 3b."""
    runs, metrics, logs = _scenario(good=True)
    meru = sorted(k for k in logs if k.startswith("meru-base"))
    assert len(meru) == len(last)
    for name, c in zip(meru, last):
        logs[name]["curv"] = np.linspace(1.0, c, len(logs[name]))
    table = reporting.claims_table(runs, metrics, logs).set_index("id")
    assert table.loc["3b", "holds"] == holds
    assert words in table.loc["3b", "note"]


def test_claims_on_zero_shot_at_chance_are_inconclusive():
    """2a-2c, 3a, 5a and 5b read zero-shot predictions: at chance their verdicts say so instead."""
    runs, metrics, logs = _scenario(good=True)
    for name, m in metrics.items():
        if name.split("-")[0] in ("clip", "meru", "hycoclip", "atmg", "phyclip"):
            m.update({"zeroshot/chance": 1 / 30, "zeroshot/mean_per_class_acc": 0.05})
    table = reporting.claims_table(runs, metrics, logs).set_index("id")
    for cid in ("2a", "2b", "2c", "3a", "5a", "5b"):
        assert table.loc[cid, "holds"] == "inconclusive", cid
        assert "under 2x chance (0.033)" in table.loc[cid, "note"]
        assert ("without that: yes" if cid in ("2a", "2b", "2c") else "without that:") in table.loc[cid, "note"]
    assert table.loc["1a", "holds"] == "yes"  # geometric claims do not read zero-shot
    for m in metrics.values():            # 0.07 >= 2/30: enough signal, 2c's verdict stands
        if "zeroshot/chance" in m:
            m["zeroshot/mean_per_class_acc"] = 0.07
    assert reporting.claims_table(runs, metrics, logs).set_index("id").loc["2c", "holds"] == "yes"


def test_write_tables(tmp_path):
    runs, metrics, logs = _scenario(good=True)
    main = reporting.main_comparison(runs, metrics)
    claims = reporting.claims_table(runs, metrics, logs)
    paths = reporting.write_tables(tmp_path / "tables", main=main, claims=claims)
    names = sorted(p.name for p in paths)
    assert names == ["claims.csv", "claims.md", "main_comparison.csv", "main_comparison.md"]
    back = pd.read_csv(tmp_path / "tables" / "claims.csv")
    assert list(back["holds"]) == list(claims["holds"])
    assert "± " in (tmp_path / "tables" / "main_comparison.md").read_text()
    md = (tmp_path / "tables" / "claims.md").read_text().splitlines()
    rows = [line for line in md if line.startswith("| ")]
    # every row keeps the header's column count: '|' inside cells (|d|, |x|) is escaped
    assert {line.replace("\\|", "").count("|") for line in rows} == {len(reporting.CLAIM_COLUMNS) + 1}


def test_claims_on_data_without_the_benchmark_say_so():
    """Runs evaluated on data with no taxonomy and no chains: the claims that read those say
    "not available for this data" with the reason, not "no runs with this metric"."""
    runs, metrics, logs = _scenario(good=True)
    why = {"hierarchy": "not available for this data: taxonomy (data.paths.taxonomy not set)",
           "chains": "not available for this data: chains (needs whole -> part -> sub-part image crops)"}
    records = {}
    for name, m in metrics.items():
        flat = {k: v for k, v in m.items() if not k.startswith(("hierarchy/", "chains/"))}
        records[name] = {"metrics": flat, "skipped": dict(why)}
    table = reporting.claims_table(runs, records, logs).set_index("id")
    for cid in ("2a", "2b", "2c"):
        assert table.loc[cid, "holds"] == "n/a" and table.loc[cid, "note"] == why["hierarchy"], cid
        assert table.loc[cid, "values"] == "n/a"
    assert table.loc["4", "holds"] == "n/a" and table.loc["4", "note"].startswith("not available for this data")
    assert table.loc["1a", "holds"] == "yes" and table.loc["6a", "holds"] == "yes"
    # one run that did measure the hierarchy: the claim is judged on what exists, not marked n/a
    first = next(iter(records))
    records[first]["skipped"] = {}
    assert reporting.claims_table(runs, records, logs).set_index("id").loc["2a", "holds"] != "n/a"


def test_uniform_random_reference_row(tmp_path):
    """The reference row carries chance and the exact expected TIE/LCA/J of a uniform guess on the
    benchmark's own tree: for root -> {a, b}, a -> {a1, a2}, leaves a1, a2, b (hand-computed over
    the 9 equally likely (prediction, truth) pairs: TIE = (0*3 + 2*2 + 3*4) / 9)."""
    import json

    from hyplib.evaluation.protocols import random_reference

    (tmp_path / "zeroshot.json").write_text(json.dumps({"classnames": ["a1", "a2", "b"], "class_ids": ["a1", "a2", "b"],
                                                        "templates": ["{}"]}))
    np.savez(tmp_path / "zeroshot.npz", images=np.zeros((3, 4, 4, 3), np.uint8), labels=np.arange(3))
    parent = {"root": None, "a": "root", "b": "root", "a1": "a", "a2": "a"}
    (tmp_path / "taxonomy.json").write_text(json.dumps({"parent": parent, "leaves": ["a1", "a2", "b"]}))
    np.savez(tmp_path / "taxonomy.npz", unused=np.zeros(1))
    ref = random_reference(tmp_path)
    assert ref["zeroshot/mean_per_class_acc"] == pytest.approx(1 / 3)
    assert ref["hierarchy/reference/TIE"] == pytest.approx(16 / 9)
    runs = [_spec("meru", s) for s in range(2)]
    metrics = {f"meru-base-s{s}": {"hierarchy/reference/TIE": 1.0} for s in range(2)}
    table = reporting.main_comparison(runs, metrics, reference=ref)
    assert list(table.index) == ["MERU", reporting.RANDOM_ROW]
    assert table.loc[reporting.RANDOM_ROW, "TIE mean"] == pytest.approx(16 / 9)
    assert table.loc[reporting.RANDOM_ROW, "seeds"] == 0 and math.isnan(table.loc[reporting.RANDOM_ROW, "TIE std"])
