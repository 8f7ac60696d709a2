rule tables:
    input:
        notebook="notebooks/06_tables.ipynb",
        metrics=[f"{r['eval_dir']}/metrics.json" for r in RUNS.values()],
        checkpoints=[f"{r['train_dir']}/final.pt" for r in RUNS.values()],  # stands for log.jsonl
    output:
        main=report(f"{RESULTS}/tables/main_comparison.md", caption="../report/main_comparison.rst", category="Tables"),
        main_csv=f"{RESULTS}/tables/main_comparison.csv",
        claims=report(f"{RESULTS}/tables/claims.md", caption="../report/claims.rst", category="Tables"),
        claims_csv=f"{RESULTS}/tables/claims.csv",
    log:
        f"{RESULTS}/notebooks/06_tables.ipynb",
    threads: 1
    resources:
        mem_mb=res("figure")["mem_mb"], runtime=res("figure")["runtime"], gpu=0,
    params:
        b64=lambda wildcards: nb_params(
            "notebooks/06_tables.ipynb",
            {"runs": list(RUNS.values()), "out_dir": f"{RESULTS}/tables", "bench_dir": BENCH},),
    shell:
        PAPERMILL + " {input.notebook} {log} -b {params.b64}"
