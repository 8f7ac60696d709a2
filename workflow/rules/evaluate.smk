rule evaluate:
    input:
        notebook="notebooks/05_evaluate.ipynb",
        checkpoint=f"{RESULTS}/train/{{run}}/final.pt",
        manifest=f"{DATA}/manifest.json",
    output:
        metrics=f"{RESULTS}/eval/{{run}}/metrics.json",
        embeddings=f"{RESULTS}/eval/{{run}}/embeddings.npz",
        figure_inputs=f"{RESULTS}/eval/{{run}}/figure_inputs.npz",  # beside out_npz (hyplib.figures.EVAL_INPUTS)
    log:
        f"{RESULTS}/notebooks/eval/{{run}}.ipynb",
    threads: config["train"]["threads"]
    resources:
        mem_mb=res("eval")["mem_mb"], runtime=res("eval")["runtime"], gpu=res("eval")["gpu"],
    params:
        b64=lambda wildcards, input, output, threads: nb_params(
            "notebooks/05_evaluate.ipynb",
            {"checkpoint": input.checkpoint, "bench_dir": BENCH, "out_json": output.metrics,
             "out_npz": output.embeddings, "device": config["train"]["device"],
             "seed": RUNS[wildcards.run]["seed"], "threads": threads,
             "log_path": f"{RUNS[wildcards.run]['train_dir']}/log.jsonl"},),
    wildcard_constraints:
        run="|".join(re.escape(r) for r in RUNS) or "none",
    shell:
        PAPERMILL + " {input.notebook} {log} -b {params.b64}"
