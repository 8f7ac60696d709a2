"""ImageNet WordNet tree: counts, leaves, root, and the uniform-random sanity figures."""
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


@pytest.mark.slow
@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="WordNet (wordnet-base) not installed")
def test_rebuild_matches_committed(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("bit", Path(__file__).parents[1] / "scripts/build_imagenet_tree.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "t.json"
    assert mod.main(["--out", str(out)]) == 0
    from hyplib.tree import Tree
    rebuilt = Tree.from_json(out)
    assert rebuilt.parent == imagenet_tree().parent and rebuilt.leaves == imagenet_tree().leaves
