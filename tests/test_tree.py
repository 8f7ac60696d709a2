"""The rooted tree used by hierarchical metrics."""
import pytest

from hyplib.tree import Tree

PARENT = {"root": None, "a": "root", "b": "root", "a1": "a", "a2": "a", "b1": "b"}


def test_structure(tmp_path):
    t = Tree(PARENT, names={"a1": "apple"})
    assert t.root == "root"
    assert t.leaves == ["a1", "a2", "b1"]
    assert t.ancestors("a1") == ["a", "root"]
    assert t.ancestors("a1", include_self=True) == ["a1", "a", "root"]
    assert t.depth("b1") == 2 and t.depth("root") == 0
    assert sorted(t.children["a"]) == ["a1", "a2"]
    assert t.name("a1") == "apple" and t.name("a2") == "a2"
    t.to_json(tmp_path / "t.json")
    assert Tree.from_json(tmp_path / "t.json") == t


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="exactly one root"):
        Tree({"a": None, "b": None})
    with pytest.raises(ValueError, match="not in the tree"):
        Tree({"a": None, "b": "zzz"})
    with pytest.raises(ValueError, match="cycle"):
        Tree({"r": None, "a": "b", "b": "a"})
    with pytest.raises(ValueError, match="not leaves"):
        Tree(PARENT, leaves=["a", "a1", "a2", "b1"])
    with pytest.raises(KeyError, match="nope"):
        Tree(PARENT).ancestors("nope")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        Tree.from_json(tmp_path / "missing.json")
