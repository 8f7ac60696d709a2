rule train:
    input:
        notebook="notebooks/04_train.ipynb",
        manifest=f"{DATA}/manifest.json",
        run_config=config["train"]["run_config"],
    # log.jsonl is not declared: Snakemake deletes the outputs of an interrupted job before
    # rerunning it, and the resumed run appends to the log it keeps (final.pt stands for both).
    output:
        checkpoint=f"{RESULTS}/train/{{run}}/final.pt",
    log:
        f"{RESULTS}/notebooks/train/{{run}}.ipynb",
    threads: config["train"]["threads"]
    resources:
        mem_mb=res("train")["mem_mb"], runtime=res("train")["runtime"], gpu=res("train")["gpu"],
    params:
        b64=lambda wildcards, input: nb_params(
            "notebooks/04_train.ipynb",
            {"config": input.run_config, "method": RUNS[wildcards.run]["method"],
             "overrides": RUNS[wildcards.run]["overrides"], "seed": RUNS[wildcards.run]["seed"],
             "run_dir": f"{RESULTS}/train/{wildcards.run}",
             "shards": wf.run_shards(config, RUNS[wildcards.run], DATA),
             "device": config["train"]["device"]},),
    wildcard_constraints:
        run="|".join(re.escape(r) for r in RUNS) or "none",
    shell:
        PAPERMILL + " {input.notebook} {log} -b {params.b64}"
