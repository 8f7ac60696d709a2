# Data: generated (data.source: generated) or your files linked and read (data.source: real);
# the same layout under results/data either way (hyplib.data.prepare).
rule prepare_data:
    input:
        notebook="notebooks/03_prepare_data.ipynb",
    output:
        manifest=f"{DATA}/manifest.json",
        grid=report(f"{RESULTS}/figures/data_samples.png", caption="../report/data_samples.rst", category="Data"),
    log:
        f"{RESULTS}/notebooks/03_prepare_data.ipynb",
    threads: workflow.cores
    resources:
        mem_mb=res("data")["mem_mb"], runtime=res("data")["runtime"], gpu=0,
    params:
        b64=lambda wildcards, output, threads: nb_params(
            "notebooks/03_prepare_data.ipynb",
            {"out_dir": DATA, "source": config["data"]["source"], "size": config["size"],
             "n_train": config["data"]["n_train"],
             "generator": dict(config["data"].get("generator") or {}), "image_size": config["data"]["image_size"],
             "seed": config["data"]["seed"], "root": config["data"].get("root", "."),
             "paths": dict(config["data"].get("paths", {})),
             "verify_shards": config["data"].get("verify_shards", True),
             "sample_grid": output.grid, "workers": threads},),
    shell:
        PAPERMILL + " {input.notebook} {log} -b {params.b64}"
