"""Bad configuration values fail with one line naming the key, before any run directory or job
exists (issue 19, part 2): every case of scripts/set_audit.py on the training CLI, and the
workflow's study overrides."""
import importlib.util
from pathlib import Path

import pytest

from hyplib.data import generate_all
from hyplib.data.genconfig import GenConfig

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("set_audit", ROOT / "scripts" / "set_audit.py")
set_audit = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(set_audit)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    generate_all(out, GenConfig.preset("quick", n_train=64, shard_size=64), progress=False, benchmarks=())
    return out / "train"


@pytest.mark.parametrize("value,key", set_audit.CASES, ids=[c[0] for c in set_audit.CASES])
def test_bad_set_value_is_one_clear_line(value, key, shards, tmp_path):
    assert set_audit.run_case(value, key, shards, tmp_path) == "clear"


def test_audit_values_are_accepted_when_valid(shards, tmp_path):
    """The audit's classifier can tell an accepted value: a valid override trains."""
    assert set_audit.run_case("train.steps=2", "train.steps", shards, tmp_path) == "accepted"
