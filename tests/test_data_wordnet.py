"""ImageNet WordNet tree: counts, leaves, root, HyCoCLIP's published edges, and the
uniform-random sanity figures."""
import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from hyplib.data.wordnet import imagenet_tree


def test_counts_leaves_root():
    import timm
    t = imagenet_tree()
    wnids = (Path(timm.__file__).parent / "data/_info/imagenet_synsets.txt").read_text().split()
    assert len(t.parent) == 1372
    assert t.leaves == wnids and len(set(wnids)) == 1000
    assert t.root == "n00001930" and t.name(t.root) == "physical entity"
    assert t.name("n01440764") == "tench"


def test_uniform_random_predictor_sanity():
    """Reference mode (ancestors exclude the leaf, include the root): TIE ~11.4, Jaccard ~0.31."""
    t = imagenet_tree()
    anc = [set(t.ancestors(leaf)) for leaf in t.leaves]
    nodes = {n: i for i, n in enumerate(sorted(set().union(*anc)))}
    m = np.zeros((len(anc), len(nodes)))
    for i, a in enumerate(anc):
        m[i, [nodes[x] for x in a]] = 1
    inter, depth = m @ m.T, m.sum(1)
    tie = depth[:, None] + depth[None, :] - 2 * (inter - 1)  # leaves' depths minus twice the LCA's depth
    np.fill_diagonal(tie, 0)
    jac = inter / (depth[:, None] + depth[None, :] - inter)
    assert tie.mean() == pytest.approx(11.4, abs=0.05)
    assert jac.mean() == pytest.approx(0.31, abs=0.005)


def _build_script():
    spec = importlib.util.spec_from_file_location("bit", Path(__file__).parents[1] / "scripts/build_imagenet_tree.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_tree_is_the_published_edge_list():
    """The committed tree written back as ``parent child`` lines is byte for byte HyCoCLIP's
    imagenet_isa.txt (its SHA-256, read from PalAvik/hycoclip at commit 08bb05b8)."""
    mod = _build_script()
    text = mod.edge_list_text(imagenet_tree().parent)
    assert text.count("\n") == 1371
    assert hashlib.sha256(text.encode()).hexdigest() == mod.PUBLISHED_SHA256


# child -> parent for the 14 links where the earlier search-built tree differed from the
# published one (names: WordNet lemmas), and nodes only the earlier tree had.
PUBLISHED_LINKS = {
    "n06794110": "n04217882",  # traffic or street sign -> signboard (was directly under the root)
    "n06874185": "n04217882",  # traffic light -> signboard (was directly under the root)
    "n09229709": "n00021939",  # bubble -> artifact (was directly under the root)
    "n04217882": "n04341686",  # signboard -> structure
    "n04149813": "n04217882",  # scoreboard -> signboard (was artifact)
    "n03405265": "n03575240",  # furnishing -> instrumentality
    "n03405725": "n03405265",  # furniture -> furnishing (was instrumentality)
    "n03998194": "n03405265",  # prayer rug -> furnishing (was floor cover)
    "n03223299": "n03122748",  # doormat -> covering (was floor cover)
    "n03163973": "n03278248",  # data input device -> electronic equipment (was peripheral)
    "n04004767": "n03699975",  # printer -> machine (was peripheral)
    "n03773504": "n04565375",  # missile -> weapon (was vehicle)
    "n03876231": "n03183080",  # paintbrush -> device (was implement)
    "n06596364": "n00021939",  # comic book -> artifact (was instrumentality)
}


def test_edges_that_differed():
    t = imagenet_tree()
    for child, parent in PUBLISHED_LINKS.items():
        assert t.parent[child] == parent, (child, t.name(child))
    assert [t.depth(n) for n in ("n06794110", "n06874185", "n09229709")] == [6, 6, 4]
    assert t.name("n04217882") == "signboard" and t.name("n03405265") == "furnishing"
    assert "n03366823" not in t.parent and "n03916720" not in t.parent  # floor cover, peripheral


def test_published_uniform_random_reference_values():
    """HyCoCLIP's uniform-random figures in reference mode (TIE 11.43, LCA 5.74, J 0.312,
    P_H 0.467, R_H 0.469) are sample means; the exact expectation on the tree lies within
    3 standard errors of a 50,000-image sample (the ImageNet validation set) of each."""
    from hyplib.evaluation.hierarchy import hierarchical_metrics
    t = imagenet_tree()
    every = np.arange(1000)
    pairs = hierarchical_metrics(np.repeat(every, 1000), np.tile(every, 1000), t, "reference", per_image=True)
    published = {"TIE": 11.43, "LCA": 5.74, "J": 0.312, "P_H": 0.467, "R_H": 0.469}
    for key, value in published.items():
        per_pair = pairs["per_image"][key]
        assert abs(per_pair.mean() - value) < 3 * per_pair.std() / np.sqrt(50_000), key
    assert pairs["TIE"] == pytest.approx(11.43, abs=0.005)
    assert pairs["J"] == pytest.approx(0.312, abs=0.001)


def test_build_refuses_other_edges(tmp_path):
    isa = tmp_path / "isa.txt"
    edges = _build_script().edge_list_text(imagenet_tree().parent)
    isa.write_text(edges.replace("n04217882 n06794110", "n00001930 n06794110"))
    with pytest.raises(SystemExit, match="not the published"):
        _build_script().main(["--isa", str(isa), "--out", str(tmp_path / "t.json")])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="WordNet (wordnet-base) not installed")
def test_rebuild_matches_committed(tmp_path):
    mod = _build_script()
    isa = tmp_path / "imagenet_isa.txt"
    isa.write_text(mod.edge_list_text(imagenet_tree().parent))
    out = tmp_path / "t.json"
    assert mod.main(["--isa", str(isa), "--out", str(out)]) == 0
    assert out.read_text() == Path(__file__).parents[1].joinpath("hyplib/data/imagenet_tree.json").read_text()
