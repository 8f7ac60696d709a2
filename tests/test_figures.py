"""Figure functions on small synthetic inputs, their inputs prepared from synthetic run folders,
and the figure notebooks' contract with the workflow (parameters, captions, generator)."""
import importlib.util
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest

from hyplib import figures, plotting
from hyplib import workflow as wf
from hyplib.figures import synthetic
from hyplib.figures.catalog.cone_collapse import plain_entailment_grid
from hyplib.figures.catalog.traversals import collapse_steps

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(0)


def _close(fig):
    assert isinstance(fig, matplotlib.figure.Figure)
    matplotlib.pyplot.close(fig)


# --------------------------------------------------------------------------- figure functions
def test_distance_to_root_one_panel_per_method():
    radii = {m: {"image": RNG.normal(1.2, 0.1, 50), "text": RNG.normal(0.8, 0.1, 40)}
             for m in ("CLIP", "MERU")}
    fig = figures.distance_to_root(radii, units={"CLIP": "angle"})
    assert len(fig.axes) == 2
    assert fig.axes[0].get_xlabel() == "angle"
    assert fig.axes[1].get_title().startswith("MERU\nmean text - mean image = -")
    assert len(fig.axes[1].patches) > 0 and len(fig.axes[1].lines) == 2  # two mean lines
    _close(fig)


def test_norms_by_kind_draws_each_kind():
    kinds = {k: RNG.normal(i + 1, 0.1, 30) for i, k in enumerate(("image", "text", "box_image", "box_text"))}
    fig = figures.norms_by_kind({"HyCoCLIP": kinds})
    assert len(fig.axes) == 1 and len(fig.axes[0].get_legend().get_texts()) == 4
    _close(fig)


def test_curvature_robustness_lines_and_diverged():
    rows = [{"label": m, "curv": c, "seed": s, "acc": (0.4 if m == "ATMG" else 0.4 - 0.1 * c) + 0.01 * s,
             "learnable": False} for m in ("MERU", "ATMG") for c in (0.1, 0.5, 1.0) for s in (0, 1)]
    rows += [{"label": "MERU", "curv": 2.0, "seed": 0, "acc": float("nan"), "learnable": False},
             {"label": "MERU", "curv": 1.0, "seed": 0, "acc": 0.42, "learnable": True}]
    fig = figures.curvature_robustness(pd.DataFrame(rows))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(fig.axes) == 1 and ax.get_xscale() == "log"
    assert "MERU: diverged" in labels and "MERU, learned c" in labels
    _close(fig)


def test_eigen_spectra_two_panels_one_line_per_method():
    spectra = {m: {"image": [np.sort(RNG.exponential(1, 16))[::-1] for _ in range(2)],
                   "text": [np.sort(RNG.exponential(1, 16))[::-1]]} for m in ("CLIP", "MERU", "ATMG")}
    fig = figures.eigen_spectra(spectra)
    assert len(fig.axes) == 2 and all(len(ax.lines) == 3 for ax in fig.axes)
    _close(fig)


def test_chain_accuracy_bars_per_chain():
    rows = [{"label": m, "seed": s, "chain": c, "acc": 0.5 + 0.1 * s}
            for c in ("image depth 1", "image depth 2", "text depth 2")
            for m in ("MERU", "ATMG") for s in (0, 1)]
    fig = figures.chain_accuracy(pd.DataFrame(rows))
    assert len(fig.axes) == 3
    assert all(len(ax.patches) == 2 for ax in fig.axes)  # one bar per method
    assert [ax.get_title() for ax in fig.axes] == ["image depth 1", "image depth 2", "text depth 2"]
    _close(fig)


def test_plain_entailment_grid_collapses_inside_the_boundary():
    phi = np.linspace(0, np.pi, 7)
    loss = plain_entailment_grid(np.array([0.5, 1.0, 4.0]), phi)
    inside = loss[:, 0]
    # omega saturates at asin(1 - eps), a hair below pi/2
    assert np.all(inside[phi <= np.pi / 2 + 1e-9] < 1e-6) and np.all(inside[phi > np.pi / 2 + 1e-6] > 0)
    assert loss[2, 2] > 0  # outside the boundary a narrow cone charges a 60-degree child


def test_cone_collapse_four_panels():
    log = pd.DataFrame({"step": np.arange(1, 11), "entailment": np.linspace(0.5, 0.0, 10)})
    weights = pd.DataFrame({"pair_type": ["a", "a", "b"], "label": [1, 1, 0], "kind": ["inter"] * 3,
                            "distance": [0.1, 0.5, 1.0], "weight": [0.1, 0.4, 0.6]})
    fig = figures.cone_collapse({"MERU": RNG.uniform(0.1, 2, 30)}, [{"label": "MERU", "log": log}], weights)
    assert len(fig.axes) == 5  # four panels + the colour bar
    assert len(fig.axes[2].lines) == 1
    _close(fig)
    fig = figures.cone_collapse({}, [], None)  # nothing to show: still four panels, saying so
    assert len(fig.axes) == 5
    _close(fig)


def test_phyclip_factor_norms_two_panels_per_run():
    norms = {"PHyCLIP": {"single": RNG.uniform(0, 1, (5, 8)), "composed": RNG.uniform(0, 1, (6, 8))},
             "PHyCLIP (k1)": {"single": RNG.uniform(0, 1, (5, 1)), "composed": RNG.uniform(0, 1, (6, 1))}}
    fig = figures.phyclip_factor_norms(norms)
    assert len(fig.axes) == 4 and len(fig.axes[0].lines) == 2
    _close(fig)


def test_poincare_embeddings_points_and_cones():
    pts = {"MERU": {"image": RNG.normal(0, 1.5, (20, 2)), "text": RNG.normal(0, 0.5, (15, 2)), "curv": 1.0,
                    "cones": [0, 3], "pairs": [(0, 1)]}}
    fig = figures.poincare_embeddings(pts)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert len(ax.collections) >= 4  # image, text and the two highlighted cone apexes
    assert len(ax.lines) >= 2 * 2 + 1  # two rays per cone + one geodesic (+ the root marker)
    _close(fig)


def test_traversals_table_layout():
    caps = ["a thing", "an animal", "a dog", "a small dog"]
    paths = {"MERU": np.array([[3, 3, 2, 1, 0], [2, 2, 2, -1, 0]]),
             "HyCoCLIP": np.array([[3, 2, 1, 0, 0]] * 2)}
    thumbs = RNG.integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)
    fig = figures.traversals(caps, paths, levels=[0, 0, 2, 3], thumbnails=thumbs, n_images=3)
    assert len(fig.axes) == 2 + 2 * 2  # thumbnails + (methods x images)
    text = fig.axes[2].texts[0].get_text()
    assert "0-1 [L3] a small dog" in text and "4 [L0] a thing" in text
    assert "no text whose cone" in fig.axes[3].texts[0].get_text()
    _close(fig)
    assert collapse_steps([5, 5, 1, 5]) == [(0, 1, 5), (2, 2, 1), (3, 3, 5)]


def test_trajectories_three_panels():
    steps = np.arange(1, 6)
    logs = [{"label": "MERU", "seed": 0, "fixed": False,
             "log": pd.DataFrame({"step": steps, "curv": 1.0 / steps, "alphas_image": 0.1 * steps,
                                  "alphas_text": 0.2 * steps})},
            {"label": "PHyCLIP", "seed": 0, "fixed": False,
             "log": pd.DataFrame({"step": steps, "curv_0": 1.0 + 0 * steps, "curv_1": 2.0 + 0 * steps})}]
    fig = figures.trajectories(logs)
    assert len(fig.axes) == 3
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[0].collections) == 1  # PHyCLIP's factor band
    _close(fig)


def test_savefig_writes_pdf_and_png(tmp_path):
    fig = figures.chain_accuracy(pd.DataFrame(columns=["label", "seed", "chain", "acc"]))
    pdf, png = plotting.savefig(fig, tmp_path / "x.pdf")
    assert pdf.is_file() and png.is_file()
    _close(fig)


# --------------------------------------------------------------------------- from run folders
@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory):
    """Run folders with the evaluation's arrays and no checkpoint: figures read evaluation outputs only."""
    root = tmp_path_factory.mktemp("runs")
    synthetic.write_bench(root / "bench")
    specs = synthetic.write_runs(root, checkpoints=False)
    return specs, root / "bench"


@pytest.mark.parametrize("name", figures.names())
def test_inputs_and_draw_from_run_folders_without_checkpoints(synthetic_runs, name):
    specs, bench = synthetic_runs
    runs = figures.load_runs(wf.runs_for_figure(specs, name))
    assert runs and all(r.metrics for r in runs) and not any((r.train_dir / "final.pt").exists() for r in runs)
    fig = figures.draw(name, runs, bench)
    assert len(fig.axes) >= 1
    _close(fig)


def test_embedding_samples_from_the_evaluation_arrays(synthetic_runs):
    specs, bench = synthetic_runs
    runs = figures.load_runs(wf.runs_for_figure(specs, "distance_to_root"))
    inputs = figures.prepare("distance_to_root", runs, bench)
    assert inputs["units"]["CLIP"].startswith("angle") and len(inputs["radii"]["CLIP"]["text"]) == 16
    r = inputs["radii"]["CLIP"]["image"]
    assert np.all((r >= 0) & (r <= np.pi)) and r.std() > 0
    runs = figures.load_runs(wf.runs_for_figure(specs, "poincare_embeddings"))
    pts = figures.prepare("poincare_embeddings", runs, bench)["points"]
    assert sorted(pts) == ["ATMG", "HyCoCLIP", "MERU"]
    assert pts["MERU"]["image"].shape == (8, 2) and pts["MERU"]["text"].shape == (16, 2)
    assert len(pts["MERU"]["cones"]) == 3


# --------------------------------------------------------------------------- evaluation inputs
@pytest.fixture(scope="module")
def evaluated_checkpoints(tmp_path_factory):
    """Untrained tiny ARGENT, PHyCLIP and MERU checkpoints and their figure_inputs.npz."""
    from hyplib.evaluation import load_model

    root = tmp_path_factory.mktemp("ckpt")
    synthetic.write_bench(root / "bench")
    specs = synthetic.write_runs(root, seeds=(0,), methods_with_checkpoints=("argent", "phyclip", "meru"))
    out = {}
    for spec in specs:
        final = Path(spec["train_dir"]) / "final.pt"
        if spec["variant"] == "base" and final.is_file():
            model, _ = load_model(final, device="cpu")
            path = figures.write_eval_inputs(model, root / "bench", Path(spec["eval_dir"]) / figures.EVAL_INPUTS,
                                             log_path=Path(spec["train_dir"]) / "log.jsonl")
            final.unlink()  # the figures must not need it
            out[spec["method"]] = (spec, model, path)
    return out, root / "bench"


def test_write_eval_inputs_holds_each_figures_checkpoint_arrays(evaluated_checkpoints):
    from hyplib.figures import embed

    done, bench = evaluated_checkpoints
    spec, model, path = done["argent"]
    with np.load(path, allow_pickle=False) as npz:
        keys = set(npz.files)
        weight, ptype = npz["cone_collapse__weight"], npz["cone_collapse__pair_type"]
        log = str(npz["train_log"])
    direct = embed.pep_pair_weights(model, model.method, bench)  # recomputed independently
    np.testing.assert_allclose(weight, direct["weight"].to_numpy(), rtol=1e-6)
    assert list(ptype) == list(direct["pair_type"]) and "phyclip_factor_norms__single" not in keys
    assert log == (Path(spec["train_dir"]) / "log.jsonl").read_text()
    with np.load(done["phyclip"][2], allow_pickle=False) as npz:
        single, composed = npz["phyclip_factor_norms__single"], npz["phyclip_factor_norms__composed"]
        assert "cone_collapse__weight" not in npz.files
    k = done["phyclip"][1].method.defaults["k"]
    assert single.shape == (4, k) and composed.shape == (8, k) and np.all(single >= 0)
    with np.load(done["meru"][2], allow_pickle=False) as npz:
        assert set(npz.files) == {"train_log"}  # MERU needs nothing from its checkpoint


def test_figures_read_the_evaluation_inputs_not_the_checkpoint(evaluated_checkpoints):
    done, bench = evaluated_checkpoints
    argent = figures.load_runs([done["argent"][0]])
    inputs = figures.prepare("cone_collapse", argent, bench)
    assert inputs["weights"] is not None and len(inputs["weights"]) == 16
    assert inputs["weights_label"] == "ARGENT seed 0" and argent[0].log is not None
    assert argent[0].log["step"].tolist() == list(range(1, 21))  # the log copy in figure_inputs.npz
    phy = figures.load_runs([done["phyclip"][0]])
    norms = figures.prepare("phyclip_factor_norms", phy, bench)["norms"]
    assert list(norms) == ["PHyCLIP"] and norms["PHyCLIP"]["composed"].shape[0] == 8


# --------------------------------------------------------------------------- registry
def test_registry_is_the_catalog_and_everything_derives_from_it():
    catalog = sorted(p.stem for p in (ROOT / "hyplib/figures/catalog").glob("[!_]*.py"))
    assert figures.names() == catalog
    assert list(wf.FIGURE_NEEDS) == catalog and set(figures.CAPTIONS) == set(catalog)
    assert wf.config_figures({}) == catalog and wf.config_figures({"figures": ["eigen_spectra"]}) == ["eigen_spectra"]
    for name in catalog:
        fig = figures.get(name)
        assert fig.caption and callable(fig.inputs) and callable(fig.draw)
        assert wf.FIGURE_NEEDS[name]["studies"] == list(fig.studies)

    assert set(wf.released_figure_needs()) == {n for n in catalog if figures.get(n).released}
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        figures.get("nope")
    with pytest.raises(ValueError, match=r"config key figures\[1\]: unknown figure 'nope'"):
        wf.check_config({"methods": [], "figures": ["eigen_spectra", "nope"]})


def test_h2_projection_keeps_distance_to_root():
    import torch

    from hyplib import lorentz
    from hyplib.figures.embed import h2_projection

    v = torch.randn(12, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = lorentz.expmap0(v, curv=0.5)
    img, txt = h2_projection(x[:7], x[7:], curv=0.5)
    r2 = lorentz.dist0(torch.as_tensor(np.concatenate([img, txt])), curv=0.5)
    assert torch.allclose(r2, lorentz.dist0(x, curv=0.5), atol=1e-9)


# --------------------------------------------------------------------------- notebooks
FIG_NOTEBOOKS = sorted((ROOT / "notebooks").glob("fig_*.ipynb"))


def test_one_notebook_and_caption_per_figure():
    assert sorted(p.stem[len("fig_"):] for p in FIG_NOTEBOOKS) == sorted(figures.FIGURES)
    assert set(figures.CAPTIONS) == set(figures.FIGURES)
    caption_file = (ROOT / "workflow" / "report" / "figure.rst").read_text()
    for name in figures.FIGURES:
        assert f'snakemake.wildcards.name == "{name}"' in caption_file


@pytest.mark.parametrize("path", FIG_NOTEBOOKS, ids=lambda p: p.stem)
def test_figure_notebook_parameters(path):
    params = wf.notebook_parameters(path)
    assert set(params) == {"runs", "out", "bench_dir"}
    assert params["runs"] is None and params["out"] == f"results/lab/figures/{path.stem[4:]}.pdf"
    assert params["bench_dir"] == "results/lab/data/bench"


def test_tables_notebook_parameters():
    params = wf.notebook_parameters(ROOT / "notebooks" / "06_tables.ipynb")
    assert params == {"runs": None, "out_dir": "results/lab/tables", "bench_dir": "results/lab/data/bench"}


def test_generated_files_are_up_to_date():
    """Notebooks and captions equal what the generator writes (no outputs, fixed cell ids)."""
    script = ROOT / "scripts" / "make_figure_notebooks.py"
    spec = importlib.util.spec_from_file_location("make_figure_notebooks", script)
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    stale = [str(p.relative_to(ROOT)) for p, text in gen.outputs().items()
             if not p.is_file() or p.read_text() != text]
    assert not stale, f"regenerate with `python scripts/make_figure_notebooks.py`: {stale}"
    assert gen.rst_escape("|x| *a*") == "\\|x\\| \\*a\\*"


def test_colorblind_palette_is_seaborns_and_seaborn_loads_only_for_drawing():
    import subprocess
    import sys

    import seaborn as sns

    from hyplib import plotting

    assert plotting.COLORBLIND == tuple(tuple(c) for c in sns.color_palette("colorblind"))
    code = ("import sys\nfrom hyplib import figures, plotting\n"
            "assert 'seaborn' not in sys.modules\n"
            "plotting.set_style()\nassert 'seaborn' in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
