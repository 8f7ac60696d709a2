"""The released-checkpoint workflow (config/released.yaml, workflow/rules/released.smk,
hyplib.released_eval) and notebooks/07_released_models.ipynb on random-weight checkpoints in
the released layout."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import committed_parameters, write_real_data_stand_ins
from PIL import Image
from released_fake import SMALL, ref_lift, ref_pixel_features, ref_text_features, write_fake
from test_workflow import _snakemake

from hyplib import released_eval as rel
from hyplib import workflow as wf
from hyplib.released import paper_transform

ROOT = Path(__file__).resolve().parents[1]
NB05 = ROOT / "notebooks" / "07_released_models.ipynb"


def _released_config(tmp_path, given: dict, paths: dict | None = None) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "released.yaml").read_text())
    section = cfg["released"]
    section["root"] = str(tmp_path / "ckpt")
    section["checkpoints"].update(given)
    section["data"]["root"] = str(tmp_path / "data")
    if paths is not None:
        section["data"]["paths"] = paths
    out = tmp_path / "released.yaml"
    out.write_text(yaml.safe_dump(cfg))
    return out


def test_plan_lists_every_catalog_entry_and_checks_given_paths(tmp_path):
    (tmp_path / "meru_vit_s.pth").write_bytes(b"x")
    planned = rel.plan_released({"root": str(tmp_path), "checkpoints": {"meru_vit_s": "meru_vit_s.pth",
                                                                         "clip_vit_s": None}})
    assert [r["name"] for r in planned] == list(rel.CATALOG)
    given = [r for r in planned if r["given"]]
    assert [(r["name"], r["method"], r["checkpoint"]) for r in given] == \
        [("meru_vit_s", "meru", str(tmp_path / "meru_vit_s.pth"))]
    with pytest.raises(ValueError, match=r"released\.checkpoints\.atmg_vit_s: file .*nope\.pth does not exist"):
        rel.plan_released({"root": str(tmp_path), "checkpoints": {"atmg_vit_s": "nope.pth"}})
    with pytest.raises(ValueError, match=r"released\.checkpoints\.meru_vit_xl: unknown checkpoint"):
        rel.plan_released({"checkpoints": {"meru_vit_xl": "a.pth"}})


def test_figures_follow_methods_and_data(tmp_path):
    for name in ("meru_vit_s.pth", "atmg_vit_s.pth"):
        (tmp_path / name).write_bytes(b"x")
    planned = rel.plan_released({"root": str(tmp_path), "checkpoints": {"meru_vit_s": "meru_vit_s.pth",
                                                                         "atmg_vit_s": "atmg_vit_s.pth"}})
    figs = wf.released_figures(planned, {"coco_captions": "c.json", "coco_images": "im"})
    assert sorted(figs) == ["distance_to_root", "eigen_spectra", "poincare_embeddings"]
    assert [r["name"] for r in figs["distance_to_root"]] == ["meru_vit_s"]
    assert wf.released_figures(planned, {"imagenet_val": "val"}) == {}
    assert "traversals" in wf.released_figures(planned, {"hierarcaps": "t.csv"})


def test_table_puts_published_beside_measured(tmp_path):
    (tmp_path / "hycoclip_vit_s.pth").write_bytes(b"x")
    planned = rel.plan_released({"root": str(tmp_path), "checkpoints": {"hycoclip_vit_s": "hycoclip_vit_s.pth"}},
                                out_dir=str(tmp_path / "out"))
    metrics = {"zeroshot/mean_per_class_acc": 0.4123, "retrieval/t2i_R@5": 0.5, "hierarchy/reference/TIE": 3.456}
    path = tmp_path / "out/eval/hycoclip_vit_s/metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"metrics": metrics, "skipped": {"chains": "not available"}}))
    md = rel.write_table(planned, tmp_path / "released.md", tmp_path / "released.csv").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| hycoclip_vit_s "))
    assert "| evaluated | 41.7 / 41.2 | 55.2 / 50.0 | 69.5 / - | 3.55 / 3.46 |" in row and row.endswith("| chains |")
    assert "| meru_vit_s | meru ViT-S | MERU, RedCaps 12M | not given | 34.4 / - |" in md
    assert "44.31 (?) / -" in md  # PHyCLIP's numbers come from a garbled copy
    assert md.count("\n| ") == len(rel.CATALOG) + 1


def test_notebooks_committed_clean():
    for name in ("08_prepare_released_data", "09_evaluate_released", "10_released_table", "07_released_models"):
        assert committed_parameters(ROOT / "notebooks" / f"{name}.ipynb")


@pytest.mark.slow
def test_dry_run_released_config(tmp_path):
    (tmp_path / "ckpt").mkdir()
    for name in ("meru_vit_s.pth", "clip_vit_s.pth"):
        (tmp_path / "ckpt" / name).write_bytes(b"x")
    cfg = yaml.safe_load((ROOT / "config" / "released.yaml").read_text())
    write_real_data_stand_ins(cfg["released"]["data"]["paths"], tmp_path / "data")
    config = _released_config(tmp_path, {"meru_vit_s": "meru_vit_s.pth", "clip_vit_s": "clip_vit_s.pth"})
    out = _snakemake("-n", "--forceall", "--quiet", "rules", "--configfile", str(config))
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for rule, count in (("released_prepare_data", 1), ("released_evaluate", 2), ("released_table", 1),
                        ("released_figure", 4)):
        assert any(line.split() == [rule, str(count)] for line in text.splitlines()), (rule, text)
    assert "train " not in text
    # Nothing given: only the table, every row "not given"; the data is not even looked at.
    config = _released_config(tmp_path, {}, paths={"imagenet_val": "missing/val"})
    out = _snakemake("-n", "--forceall", "--quiet", "rules", "--configfile", str(config))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "released_table" in out.stdout and "released_evaluate" not in out.stdout


@pytest.mark.slow
def test_missing_checkpoint_file_fails_before_any_job(tmp_path):
    config = _released_config(tmp_path, {"meru_vit_s": "gone.pth"})
    out = _snakemake("-n", "--configfile", str(config))
    assert out.returncode != 0 and "released.checkpoints.meru_vit_s" in out.stdout + out.stderr


@pytest.mark.workflow
@pytest.mark.slow
def test_released_end_to_end(tmp_path, monkeypatch):
    """Fake ImageNet/COCO/Flickr/SugarCrepe/HierarCaps files and two random-weight checkpoints."""
    from test_real_data import build_fake_real

    build_fake_real(tmp_path / "data")
    (tmp_path / "ckpt").mkdir()
    write_fake(tmp_path / "ckpt/meru_vit_s.pth", "meru", seed=1)
    write_fake(tmp_path / "ckpt/clip_vit_s.pth", "clip", seed=2, root=True)
    paths = yaml.safe_load((ROOT / "config/released.yaml").read_text())["released"]["data"]["paths"]
    paths["flickr_images"] = "flickr30k/images"
    config = _released_config(tmp_path, {"meru_vit_s": "meru_vit_s.pth", "clip_vit_s": "clip_vit_s.pth"}, paths)
    work = tmp_path / "repo"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".venv", ".git", "results", ".snakemake",
                                                              "__pycache__", "*.egg-info"))
    monkeypatch.setenv("HYPLIB_ROOT", str(work))  # notebooks write under the copy, whatever PYTHONPATH says
    out = _snakemake("--cores", "2", "--configfile", str(config), cwd=work, timeout=1500)
    assert out.returncode == 0, (out.stdout + out.stderr)[-6000:]
    md = (work / "results/tables/released.md").read_text()
    assert "| meru_vit_s | meru ViT-S | MERU, RedCaps 12M | evaluated |" in md
    assert "| atmg_vit_s | atmg ViT-S | ATMG, RedCaps 8M subset | not given |" in md
    record = json.loads((work / "results/released/eval/meru_vit_s/metrics.json").read_text())
    for key in ("zeroshot/mean_per_class_acc", "retrieval/t2i_R@5", "retrieval_flickr30k/i2t_R@1",
                "hierarchy/reference/TIE", "composition/acc", "hierarcaps/tau", "pep/auc"):
        assert key in record["metrics"], key
    assert set(record["skipped"]) == {"chains"}
    for name in ("distance_to_root", "eigen_spectra", "poincare_embeddings", "traversals"):
        assert (work / f"results/released/figures/{name}.pdf").stat().st_size > 0


# ----------------------------------------------------------------------------- notebook 05
def _dist0(x, c):
    """Hyperbolic distance to the root of space parts ``x`` (N, D) at curvature -c."""
    xt = torch.sqrt(1 / c + (x * x).sum(-1))
    return torch.acosh(torch.sqrt(c) * xt) / torch.sqrt(c)


@pytest.mark.slow
@pytest.mark.parametrize("kind,name", [("meru", "meru_vit_s.pth"), ("phyclip", "phyclip_vit_b.pth")])
def test_notebook_05_on_a_random_checkpoint(tmp_path, kind, name):
    papermill = pytest.importorskip("papermill")
    state = write_fake(tmp_path / name, kind)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (48, 60, 3), dtype=np.uint8)).save(tmp_path / "img.png")
    out_json = tmp_path / "summary.json"
    papermill.execute_notebook(str(NB05), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
                               cwd=str(ROOT), parameters={"checkpoint": str(tmp_path / name),
                                                          "image": str(tmp_path / "img.png"),
                                                          "traversal_steps": 4, "out_json": str(out_json)})
    summary = json.loads(out_json.read_text())
    assert summary["method"] == kind and len(summary["traversal"]) == 4
    pixels = paper_transform(SMALL["img"])(Image.open(tmp_path / "img.png").convert("RGB"))[None]
    img = ref_lift(state, ref_pixel_features(state, pixels, SMALL["vw"] // 64), "image", kind)[0]
    if kind == "meru":
        c = state["curv"].exp()
        assert summary["image_radius"] == pytest.approx(float(_dist0(img[None], c)[0]), abs=1e-4)
        # The caption's cone from MERU's formulas (min radius 0.1), on the reference embeddings.
        import open_clip

        caption = "a cube"  # the notebook's default captions[cone_caption]
        tokens = open_clip.SimpleTokenizer(context_length=SMALL["ctx"])([caption])
        x = ref_lift(state, ref_text_features(state, tokens, SMALL["tw"] // 64), "text", kind)[0]
        aperture = math.asin(min(1.0, 2 * 0.1 / float(torch.sqrt(c) * x.norm())))
        xt, yt = torch.sqrt(1 / c + x @ x), torch.sqrt(1 / c + img @ img)
        lor = c * (x @ img - xt * yt)
        angle = math.acos(float((yt + lor * xt) / (x.norm() * torch.sqrt(lor ** 2 - 1))))
        cone = summary["cone"]
        assert cone["half_aperture"] == pytest.approx(aperture, abs=1e-4)
        assert cone["exterior_angle"] == pytest.approx(angle, abs=1e-3)
        assert cone["image_in_cone"] == (angle <= aperture)
    else:
        k = sum(1 for key in state if key.startswith("curvs."))
        c = torch.stack([state[f"curvs.{i}"] for i in range(k)]).exp()
        per_factor = _dist0(img.reshape(k, -1), c)
        assert summary["image_radius"] == pytest.approx(float(per_factor.mean()), abs=1e-4)  # l1: mean
        assert 0 <= summary["cone"]["factors_with_image_in_cone"] <= k == summary["cone"]["factors"]
