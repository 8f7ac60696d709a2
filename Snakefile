# Reproduction workflow: parameterised notebooks run by papermill, all logic in hyplib.
#   snakemake --cores all                              (config/default.yaml, the embedded CPU run)
#   snakemake --cores all --configfile config/quick.yaml
#   snakemake --cores all results/figures/<name>.pdf   (one figure and only what it needs)
from snakemake.utils import min_version, validate

min_version("9.0")

configfile: "config/default.yaml"

validate(config, "config/schema.yaml")

include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/propositions.smk"
include: "workflow/rules/released.smk"

report: "workflow/report/workflow.rst"


# With a `released` section (config/released.yaml) the default target is the released
# checkpoints' evaluation instead of the reproduction.
rule all:
    input:
        RELEASED_TARGETS if RELEASED else [
            expand("results/figures/{name}.pdf", name=config["figures"]),
            "results/tables/main_comparison.md",
            "results/tables/claims.md",
            "results/propositions.json",
        ],
