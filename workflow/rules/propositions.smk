rule propositions:
    input:
        notebook="notebooks/02_propositions.ipynb",
    output:
        json=f"{RESULTS}/propositions.json",
    log:
        f"{RESULTS}/notebooks/02_propositions.ipynb",
    threads: 1
    resources:
        mem_mb=res("figure")["mem_mb"], runtime=res("figure")["runtime"], gpu=0,
    params:
        b64=lambda wildcards, output: nb_params(
            "notebooks/02_propositions.ipynb",
            {"output_json": output.json, "figure_dir": f"{RESULTS}/figures/propositions",
             "quick": config["size"] == "quick", "seed": 0},),
    shell:
        PAPERMILL + " {input.notebook} {log} -b {params.b64}"
