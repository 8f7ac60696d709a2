# Reproduction workflow: parameterised notebooks run by papermill, all logic in hyplib.
#   snakemake --cores all                              (config/default.yaml, the embedded CPU run)
#   snakemake --cores all --configfile config/quick.yaml
#   snakemake --cores all results/figures/<name>.pdf   (one figure and only what it needs)
from snakemake.utils import min_version, validate

min_version("9.0")

# A config file describes the whole run: the files given with --configfile are the config
# (several are merged in order); config/default.yaml is read only when none is given, so a
# study or method it lists never leaks into another config's plan. --config key=value
# overrides apply on top either way. A config with only a `released` section
# (config/released.yaml: the authors' checkpoints, nothing trained) takes the other keys from
# config/default.yaml, which its targets do not use.
if not workflow.overwrite_configfiles or "released" in config:

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
            expand(f"{RESULTS}/figures/{{name}}.pdf", name=wf.config_figures(config)),
            f"{RESULTS}/tables/main_comparison.md",
            f"{RESULTS}/tables/claims.md",
            f"{RESULTS}/propositions.json",
        ],
