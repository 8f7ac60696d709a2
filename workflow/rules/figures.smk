from hyplib.figures.registry import EVAL_INPUTS


def figure_runs(name):
    return wf.runs_for_figure(list(RUNS.values()), name)


def figure_inputs(wildcards):
    runs = figure_runs(wildcards.name)
    return {
        "notebook": f"notebooks/fig_{wildcards.name}.ipynb",
        "metrics": [f"{r['eval_dir']}/metrics.json" for r in runs],
        "embeddings": [f"{r['eval_dir']}/embeddings.npz" for r in runs],
        # what a figure needs from a checkpoint, and the training log: written by the evaluation
        "figure_inputs": [f"{r['eval_dir']}/{EVAL_INPUTS}" for r in runs],
    }


rule figure:
    input:
        unpack(figure_inputs),
    output:
        pdf=f"{RESULTS}/figures/{{name}}.pdf",
        png=report(f"{RESULTS}/figures/{{name}}.png", caption="../report/figure.rst", category="Figures"),
    log:
        f"{RESULTS}/notebooks/figures/{{name}}.ipynb",
    threads: 1
    resources:
        mem_mb=res("figure")["mem_mb"], runtime=res("figure")["runtime"], gpu=0,
    params:
        b64=lambda wildcards, output: nb_params(
            f"notebooks/fig_{wildcards.name}.ipynb",
            {"runs": figure_runs(wildcards.name), "out": output.pdf, "bench_dir": BENCH},),
    wildcard_constraints:
        name="|".join(wf.FIGURE_NEEDS),
    shell:
        PAPERMILL + " {input.notebook} {log} -b {params.b64}"
