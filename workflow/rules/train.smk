# One GPU (or the CPU): the notebook trains in the job's process. Several GPUs
# (resources.train: nodes x gpu per node): the job first starts one training process per GPU
# with srun (rendezvous from SLURM's variables: hyplib.training.distributed.slurm_env; a killed
# or failed task ends the step), then runs the notebook on one GPU, which finds the finished run
# and reports it. A preempted or timed-out job resumes from its checkpoint when rerun.
TRAIN_NODES, TRAIN_GPUS_PER_NODE = train_layout()
TRAIN_LAUNCH = ""
if TRAIN_NODES * TRAIN_GPUS_PER_NODE > 1:
    TRAIN_LAUNCH = (
        f"srun --kill-on-bad-exit=1 --nodes={TRAIN_NODES} --ntasks={TRAIN_NODES * TRAIN_GPUS_PER_NODE} "
        f"--ntasks-per-node={TRAIN_GPUS_PER_NODE} --gpus-per-node={TRAIN_GPUS_PER_NODE} "
        f"--cpus-per-task={{threads}} {shlex.quote(sys.executable)} -m hyplib.train --params-b64 {{params.b64}} && "
        "srun --nodes=1 --ntasks=1 --gpus=1 --cpus-per-task={threads} ")


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
    priority: lambda wildcards: wf.train_priority(RUNS[wildcards.run])  # longest first, before evaluation
    resources:
        **train_resources(),
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
        TRAIN_LAUNCH + PAPERMILL + " {input.notebook} {log} -b {params.b64}"
