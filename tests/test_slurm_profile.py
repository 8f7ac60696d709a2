"""profiles/slurm with the pinned executor plugin against stand-in SLURM commands.

``sbatch``, ``squeue``, ``sacct``, ``sinfo``, ``sacctmgr``, ``sshare`` and ``scontrol`` are
replaced by small scripts on ``PATH``: ``sbatch`` records each call (arguments and the wrapped
command) and creates the job's declared outputs, as the job would; ``sacct`` reports every
submitted job as COMPLETED. So ``snakemake --profile profiles/slurm --configfile
config/paper.yaml`` walks the whole plan, and the test checks what every rule asked SLURM for.
"""
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import write_real_data_stand_ins

from hyplib import workflow as wf

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).parent / "snakemake")

SBATCH = r'''
import json, os, shlex, sys
from pathlib import Path
args = sys.argv[1:]
log, outputs = Path(os.environ["STANDIN_LOG"]), json.loads(Path(os.environ["STANDIN_OUTPUTS"]).read_text())
wrap = next((a[len("--wrap="):] for a in args if a.startswith("--wrap=")), None)
comment = args[args.index("--comment") + 1]
for forbidden in ("--gres", "--gpus-per-node"):
    if any(a.startswith(forbidden) for a in args):
        sys.exit(f"sbatch stand-in: {forbidden} given")
for out in outputs[comment]:  # the job "runs": its declared outputs appear
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text("stand-in")
with open(log, "a") as f:
    f.write(json.dumps({"args": args, "comment": comment, "wrap": wrap}) + "\n")
print(sum(1 for _ in open(log)) + 1000)
'''

SACCT = r'''
import os, sys
from pathlib import Path
args = " ".join(sys.argv[1:])
if "JobIdRaw,State" in args:  # status query: every submitted job has finished
    n = sum(1 for _ in open(os.environ["STANDIN_LOG"])) if Path(os.environ["STANDIN_LOG"]).exists() else 0
    for i in range(n):
        print(f"{1001 + i}|COMPLETED")
elif "Account" in args:
    print("your_account")
'''

ECHO = {"sacctmgr": "print('your_account')", "sshare": "print('your_account')", "squeue": "",
        "sinfo": "print('cpu gpu')", "scontrol": "print('MinJobAge = 300 sec')"}


def _stand_ins(bin_dir: Path) -> None:
    bin_dir.mkdir()
    for name, body in {"sbatch": SBATCH, "sacct": SACCT, **ECHO}.items():
        path = bin_dir / name
        path.write_text(f"#!{sys.executable}\n{body}\n")
        path.chmod(0o755)


def _job_outputs(dry_run: str) -> dict[str, list[str]]:
    """``rule_<name>[_wildcards_<values>]`` (the plugin's ``--comment``) -> declared outputs,
    read from a dry run's job listing."""
    jobs, current = {}, None
    for line in dry_run.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line):
            current = {"rule": m.group(1), "output": [], "wildcards": []}
            jobs.setdefault("pending", []).append(current)
        elif current is not None and (m := re.match(r"^\s+output: (.*)", line)):
            current["output"] = [p.strip() for p in m.group(1).split(",")]
        elif current is not None and (m := re.match(r"^\s+wildcards: (.*)", line)):
            current["wildcards"] = [kv.split("=", 1)[1] for kv in m.group(1).split(", ")]
    out = {}
    for job in jobs.get("pending", []):
        key = f"rule_{job['rule']}" + (f"_wildcards_{'_'.join(job['wildcards'])}" if job["wildcards"] else "")
        out[key] = job["output"]
    return out


def _submit(tmp_path: Path, cfg: dict) -> tuple[list[dict], subprocess.CompletedProcess]:
    """Run the SLURM profile under the stand-ins in a copy-free way (the repository as the
    working directory, results under tmp_path); returns the recorded sbatch calls."""
    cfg_path = tmp_path / "paper.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    _stand_ins(tmp_path / "bin")
    env = dict(os.environ, PATH=f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
               STANDIN_LOG=str(tmp_path / "sbatch.jsonl"), STANDIN_OUTPUTS=str(tmp_path / "outputs.json"),
               HOME=str(tmp_path))
    plan = subprocess.run([SNAKEMAKE, "-n", "--forceall", "--configfile", str(cfg_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=1800)
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr[-3000:]
    (tmp_path / "outputs.json").write_text(json.dumps(_job_outputs(plan.stdout)))
    run = subprocess.run([SNAKEMAKE, "--profile", "profiles/slurm", "--configfile", str(cfg_path),
                          "--slurm-init-seconds-before-status-checks", "1", "--latency-wait", "0",
                          "--slurm-logdir", str(tmp_path / "slurm_logs")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    sbatch_log = tmp_path / "sbatch.jsonl"
    calls = [json.loads(line) for line in open(sbatch_log)] if sbatch_log.exists() else []
    return calls, run


def _flag(args: list[str], name: str) -> str | None:
    """The value of ``--name=value`` or ``--name value`` / ``-x value`` in an sbatch call."""
    for i, a in enumerate(args):
        if a.startswith(name + "="):
            return a.split("=", 1)[1]
        if a == name:
            return args[i + 1]
    return None


def _paper_config(tmp_path: Path, **train_resources) -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    write_real_data_stand_ins(cfg["data"]["paths"], tmp_path / "data")
    cfg["data"]["root"] = str(tmp_path / "data")
    cfg["results_dir"] = str(tmp_path / "results")
    cfg["resources"]["train"].update(train_resources)
    return cfg


def _rule(call: dict) -> str:
    return re.match(r"rule_(\w+?)(_wildcards_.*)?$", call["comment"]).group(1)


def summarize(calls: list[dict]) -> dict:
    """Per rule: submissions, and each distinct resource request (the flags SLURM sees)."""
    keys = ("-p", "--gpus", "--nodes", "--ntasks", "--ntasks-per-gpu", "--cpus-per-task", "--mem", "-t")
    out: dict = {}
    for call in calls:
        args = [a for a in call["args"] if not a.startswith("--wrap=")]
        request = tuple((k, _flag(args, k)) for k in keys if _flag(args, k) is not None)
        entry = out.setdefault(_rule(call), {"jobs": 0, "requests": Counter()})
        entry["jobs"] += 1
        entry["requests"][request] += 1
    return out


@pytest.mark.workflow
@pytest.mark.slow
def test_paper_config_submits_every_rule_with_its_resources(tmp_path):
    cfg = _paper_config(tmp_path)
    calls, run = _submit(tmp_path, cfg)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-4000:]
    summary = summarize(calls)
    print(json.dumps({r: {"jobs": e["jobs"], "requests": [dict(k) for k in e["requests"]]}
                      for r, e in summary.items()}, indent=1))
    n_runs = len(wf.plan_runs(cfg))
    assert summary["train"]["jobs"] == n_runs == summary["evaluate"]["jobs"]
    assert summary["prepare_data"]["jobs"] == 1
    assert summary["figure"]["jobs"] == len(cfg.get("figures") or wf.FIGURE_NEEDS)  # none listed: every figure
    assert summary["tables"]["jobs"] == 1 and summary["propositions"]["jobs"] == 1
    nodes, per_node = cfg["resources"]["train"]["nodes"], cfg["resources"]["train"]["gpu"]
    for call in calls:
        args = [a for a in call["args"] if not a.startswith("--wrap=")]
        rule = _rule(call)
        gpu = {"train": nodes * per_node, "evaluate": cfg["resources"]["eval"]["gpu"]}.get(rule, 0)
        assert _flag(args, "-p") == ("gpu" if gpu else "cpu"), (rule, args)
        assert _flag(args, "--gpus") == (str(gpu) if gpu else None), (rule, args)
        assert _flag(args, "-A") == "your_account"
        res = cfg["resources"][{"train": "train", "evaluate": "eval", "prepare_data": "data"}.get(rule, "figure")]
        assert _flag(args, "--mem") == str(res["mem_mb"]) and _flag(args, "-t") == str(res["runtime"]), (rule, args)
        if rule == "train":
            assert _flag(args, "--nodes") == str(nodes) and _flag(args, "--ntasks") == str(nodes * per_node)
            assert _flag(args, "--ntasks-per-gpu") == "1"
            assert _flag(args, "--signal") == "USR1@600"
            assert _flag(args, "--cpus-per-task") == str(cfg["train"]["threads"])
    # Snakemake applies profiles/default to every run (a workflow profile), SLURM ones too: it must
    # not set `cores`, which would cap every rule's threads at the submitting machine's cores.
    assert "cores" not in (yaml.safe_load((ROOT / "profiles/default/config.yaml").read_text()) or {})


@pytest.mark.workflow
@pytest.mark.slow
def test_multi_node_train_job_launches_one_process_per_gpu(tmp_path):
    """Two nodes of four GPUs: the job asks for 8 tasks on 2 nodes, and its command (run by the
    jobstep executor inside the allocation) starts 8 training processes with srun before the
    notebook reports the finished run."""
    cfg = _paper_config(tmp_path, nodes=2, gpu=4)
    cfg["methods"], cfg["studies"], cfg["figures"] = ["meru"], {}, ["trajectories"]
    calls, run = _submit(tmp_path, cfg)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-4000:]
    train = [c for c in calls if _rule(c) == "train"]
    assert len(train) == 1
    args = [a for a in train[0]["args"] if not a.startswith("--wrap=")]
    assert (_flag(args, "--nodes"), _flag(args, "--ntasks"), _flag(args, "--gpus")) == ("2", "8", "8")
    # the jobstep runs the rule's own srun (mpi resource) instead of wrapping it in `srun -n1`
    # the target before --configfile (which takes every path after it); cores enough for threads=8
    target = f"{cfg['results_dir']}/train/meru-base-s0/final.pt"
    shell = subprocess.run([SNAKEMAKE, target, "-n", "-p", "--forceall", "--cores", "64",
                            "--configfile", str(tmp_path / "paper.yaml")], cwd=ROOT,
                           capture_output=True, text=True, timeout=600).stdout
    launch = next(line for line in shell.splitlines() if "srun --kill-on-bad-exit=1" in line)
    assert "--nodes=2 --ntasks=8 --ntasks-per-node=4 --gpus-per-node=4" in launch
    assert f"--cpus-per-task={cfg['train']['threads']}" in launch
    assert "-m hyplib.train --params-b64 " in launch
    assert re.search(r"&& srun --nodes=1 --ntasks=1 --gpus=1 .*papermill_retry", launch)


def test_train_layout_must_split_every_batch():
    cfg = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    assert wf.train_layout(cfg) == (1, 8)
    wf.check_train_layout(cfg)  # 2048 and 768 split over 8
    cfg["resources"]["train"].update(gpu=7)
    first = wf.plan_runs(cfg)[0]["name"]
    with pytest.raises(ValueError, match=rf"run '{first}' has train.batch_size = 2048, which does not split "
                                         r"over 1 node\(s\) x 7 GPU\(s\) = 7 processes"):
        wf.check_train_layout(cfg)
    cfg["resources"]["train"].update(gpu=0, nodes=2)
    with pytest.raises(ValueError, match=r"resources\.train\.nodes = 2 needs resources\.train\.gpu >= 1"):
        wf.train_layout(cfg)


def test_srun_tasks_find_each_other_from_slurm_variables():
    from hyplib.training.distributed import first_host, slurm_env

    assert first_host("gpu[03-05,09],cpu1") == "gpu03" and first_host("node7") == "node7"
    assert first_host("a1,b[1-2]") == "a1" and first_host("x[0012]") == "x0012"
    task = {"SLURM_NTASKS": "16", "SLURM_PROCID": "9", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "123456",
            "SLURM_STEP_NODELIST": "g[1-2]"}
    assert slurm_env(task) == {"RANK": "9", "WORLD_SIZE": "16", "LOCAL_RANK": "1", "MASTER_ADDR": "g1",
                               "MASTER_PORT": str(20000 + 123456 % 20000)}
    assert slurm_env({**task, "WORLD_SIZE": "16"}) == {}  # torchrun's variables win
    assert slurm_env({**task, "SLURM_NTASKS": "1"}) == {}  # the single-task notebook step
