"""scripts/lint_workflow.py: parsing snakemake --lint's text and the accepted-lints rule."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import lint_workflow as L  # noqa: E402

ROOT = L.ROOT
TEXT = f"""Using workflow specific profile profiles/default for setting default command line arguments.
Lints for snakefile {ROOT}/workflow/rules/released.smk:
    * Path composition with '+' in line 46:
      This becomes quickly unreadable.

Lints for snakefile {ROOT}/workflow/rules/train.smk:
    * Path composition with '+' in line 3:
      This becomes quickly unreadable.

Lints for rule train (line 1, {ROOT}/workflow/rules/train.smk):
    * Specify a conda environment or container for each rule.:
      This way, the used software for each specific step is documented.
    * No log directive defined:
      Without a log directive, all output will be printed to the terminal.
"""


def test_parse_reads_file_rule_and_title():
    assert L.parse(TEXT) == [
        ("workflow/rules/released.smk", "snakefile", "Path composition with '+'"),
        ("workflow/rules/train.smk", "snakefile", "Path composition with '+'"),
        ("workflow/rules/train.smk", "rule train", "Specify a conda environment or container for each rule."),
        ("workflow/rules/train.smk", "rule train", "No log directive defined"),
    ]


def test_a_lint_is_accepted_only_where_its_reason_applies():
    # '+' is accepted in released.smk only; the conda lint anywhere; a missing log nowhere.
    assert L.unaccepted(L.parse(TEXT)) == [
        ("workflow/rules/train.smk", "snakefile", "Path composition with '+'"),
        ("workflow/rules/train.smk", "rule train", "No log directive defined"),
    ]


def test_every_accepted_lint_has_a_reason():
    assert all(len(why) > 20 for why in L.ACCEPTED.values())
