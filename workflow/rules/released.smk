# The authors' released checkpoints (config/released.yaml): evaluation data, one evaluation per
# given checkpoint, the published-vs-measured table and the figures that suit trained models.
# Active only when the config has a `released` section; `rule all` then asks for RELEASED_TARGETS.
# The plan is plain Python in hyplib.released_eval (tested without Snakemake).
from hyplib import released_eval as rel

RELEASED = config.get("released")
RELEASED_TARGETS = []

if RELEASED:
    from hyplib.data.real import resolve_data_paths

    REL_OUT = f"{RESULTS}/released"  # under results_dir, like every other output
    REL_DATA = f"{REL_OUT}/data"
    REL_BENCH = f"{REL_DATA}/bench"
    REL_DATA_CFG = dict(RELEASED.get("data") or {})
    REL_PATHS = {k: v for k, v in dict(REL_DATA_CFG.get("paths") or {}).items() if v not in (None, "")}
    REL_PLAN = rel.plan_released(RELEASED, out_dir=REL_OUT)
    REL_GIVEN = {r["name"]: r for r in REL_PLAN if r["given"]}
    if REL_GIVEN:  # the data is read only when something will be evaluated on it
        try:
            resolve_data_paths(REL_DATA_CFG.get("root", "."), REL_PATHS, required=())
        except (FileNotFoundError, ValueError) as err:
            raise ValueError(f"released.data: {err}") from None
    REL_FIGURES = wf.released_figures(REL_PLAN, REL_PATHS)
    RELEASED_TARGETS = [f"{RESULTS}/tables/released.md"] + [
        f"{REL_OUT}/figures/{name}.pdf" for name in REL_FIGURES]

    rule released_prepare_data:
        input:
            notebook="notebooks/08_prepare_released_data.ipynb",
        output:
            manifest=f"{REL_DATA}/manifest.json",
        log:
            f"{RESULTS}/notebooks/released/08_prepare_released_data.ipynb",
        threads: 1
        resources:
            mem_mb=res("data")["mem_mb"], runtime=res("data")["runtime"], gpu=0,
        params:
            b64=lambda wildcards: nb_params(
                "notebooks/08_prepare_released_data.ipynb",
                {"out_dir": REL_DATA, "root": REL_DATA_CFG.get("root", "."), "paths": REL_PATHS,
                 "image_size": REL_DATA_CFG.get("image_size", 224), "seed": REL_DATA_CFG.get("seed", 0),
                 "workers": 1},),
        shell:
            PAPERMILL + " {input.notebook} {log} -b {params.b64}"

    rule released_evaluate:
        input:
            notebook="notebooks/09_evaluate_released.ipynb",
            checkpoint=lambda wildcards: REL_GIVEN[wildcards.name]["checkpoint"],
            manifest=f"{REL_DATA}/manifest.json",
        output:
            metrics=f"{REL_OUT}/eval/{{name}}/metrics.json",
            embeddings=f"{REL_OUT}/eval/{{name}}/embeddings.npz",
        log:
            f"{RESULTS}/notebooks/released/eval/{{name}}.ipynb",
        threads: RELEASED.get("threads", 1)
        resources:
            mem_mb=res("eval")["mem_mb"], runtime=res("eval")["runtime"], gpu=res("eval").get("gpu", 0),
        params:
            b64=lambda wildcards, input, output, threads: nb_params(
                "notebooks/09_evaluate_released.ipynb",
                {"name": wildcards.name, "checkpoint": input.checkpoint, "method": "", "bench_dir": REL_BENCH,
                 "out_json": output.metrics, "out_npz": output.embeddings,
                 "device": RELEASED.get("device", "cpu"), "batch_size": RELEASED.get("batch_size", 128),
                 "protocols": "", "threads": threads},),
        wildcard_constraints:
            name="|".join(re.escape(n) for n in REL_GIVEN) or "none",
        shell:
            PAPERMILL + " {input.notebook} {log} -b {params.b64}"

    rule released_table:
        input:
            notebook="notebooks/10_released_table.ipynb",
            metrics=[f"{r['eval_dir']}/metrics.json" for r in REL_GIVEN.values()],
        output:
            md=report(f"{RESULTS}/tables/released.md", caption="../report/released.rst", category="Tables"),
            csv=f"{RESULTS}/tables/released.csv",
        log:
            f"{RESULTS}/notebooks/released/10_released_table.ipynb",
        threads: 1
        resources:
            mem_mb=res("figure")["mem_mb"], runtime=res("figure")["runtime"], gpu=0,
        params:
            b64=lambda wildcards, output: nb_params(
                "notebooks/10_released_table.ipynb",
                {"released": dict(RELEASED), "out_md": output.md, "out_csv": output.csv, "out_dir": REL_OUT},),
        shell:
            PAPERMILL + " {input.notebook} {log} -b {params.b64}"

    rule released_figure:
        input:
            notebook="notebooks/fig_{name}.ipynb",
            metrics=lambda wildcards: [f"{r['eval_dir']}/metrics.json" for r in REL_FIGURES[wildcards.name]],
            embeddings=lambda wildcards: [f"{r['eval_dir']}/embeddings.npz" for r in REL_FIGURES[wildcards.name]],
        output:
            pdf=f"{REL_OUT}/figures/{{name}}.pdf",
            png=report(f"{REL_OUT}/figures/{{name}}.png", caption="../report/figure.rst", category="Released"),
        log:
            f"{RESULTS}/notebooks/released/figures/{{name}}.ipynb",
        threads: 1
        resources:
            mem_mb=res("figure")["mem_mb"], runtime=res("figure")["runtime"], gpu=0,
        params:
            b64=lambda wildcards, output: nb_params(
                f"notebooks/fig_{wildcards.name}.ipynb",
                {"runs": [{k: v for k, v in r.items() if k not in ("checkpoint", "given")}
                          for r in REL_FIGURES[wildcards.name]],
                 "out": output.pdf, "bench_dir": REL_BENCH},),
        wildcard_constraints:
            name="|".join(REL_FIGURES) or "none",
        shell:
            PAPERMILL + " {input.notebook} {log} -b {params.b64}"
