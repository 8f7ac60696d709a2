"""Interrupted runs lose nothing (issue 19, part 3): a damaged newest checkpoint falls back to
the older one, a rebuilt final.pt keeps the real final loss, data counts continue across a
resume, a process whose parent dies stops, and a notebook whose kernel fails at start-up is
retried (and only then)."""
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import torch
from PIL import Image
from test_train_loop import TINY, NoisyMethod, cfg_for, parts_for

from hyplib import methods, models
from hyplib.data import make_loader
from hyplib.data.shards import write_shard
from hyplib.training import checkpoint as ckpt
from hyplib.training.loop import Components, fit

ROOT = Path(__file__).resolve().parents[1]


def _same_weights(a, b):
    return all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())


def test_damaged_newest_checkpoint_falls_back_to_the_older_one(tmp_path):
    cfg = cfg_for("meru")
    fit(cfg, tmp_path / "a", parts_for("meru", NoisyMethod))
    fit(cfg, tmp_path / "b", parts_for("meru", NoisyMethod), stop_after=5)
    newest = tmp_path / "b" / "checkpoints" / "step_0000004.pt"
    newest.write_bytes(newest.read_bytes()[:1000])  # torn by a crash of the disk, say
    with pytest.warns(RuntimeWarning, match="step_0000004.pt is unreadable"):
        resumed = fit(cfg, tmp_path / "b", parts_for("meru", NoisyMethod))
    assert resumed["resumed_from"].endswith("step_0000002.pt") and resumed["completed"]
    assert _same_weights(ckpt.load(tmp_path / "a" / "final.pt"), ckpt.load(tmp_path / "b" / "final.pt"))
    assert ckpt.load(newest)["step"] == 4  # rewritten when the run passed step 4 again
    for path in (tmp_path / "b" / "checkpoints").glob("*.pt"):
        path.write_bytes(b"garbage")
    with pytest.warns(RuntimeWarning):
        assert ckpt.load_newest(tmp_path / "b" / "checkpoints") == (None, None)


@pytest.mark.slow
def test_rebuilt_final_keeps_the_final_loss(tmp_path):
    cfg = cfg_for("clip", steps=4, checkpoint_every=2)
    first = fit(cfg, tmp_path, parts_for("clip"))
    (tmp_path / "final.pt").unlink()  # e.g. Snakemake removed the output of an interrupted job
    rebuilt = fit(cfg, tmp_path, parts_for("clip"))
    assert rebuilt["final_loss"] == first["final_loss"] and rebuilt["final_logs"] == first["final_logs"]
    assert ckpt.load(tmp_path / "final.pt")["summary"]["final_loss"] == first["final_loss"]
    (tmp_path / "final.pt").write_bytes(b"torn")
    with pytest.warns(RuntimeWarning, match="final.pt is unreadable"):
        again = fit(cfg, tmp_path, parts_for("clip"))
    assert again["final_loss"] == first["final_loss"]
    assert _same_weights(ckpt.load(tmp_path / "final.pt"), ckpt.load(tmp_path / "checkpoints" / "step_0000004.pt"))


def _png(i):
    import io
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (i * 7 % 256, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def _shard_parts(shards):
    """CLIP on the tiny model, batches from a real shard loader."""
    method = methods.get("clip", embed_dim=TINY["embed_dim"])

    def loader(model, *, batch_size, rank, world_size, start_batch):
        return make_loader(shards, batch_size=batch_size, image_size=16, tokenize=model.tokenize, seed=0,
                           rank=rank, world_size=world_size, start_batch=start_batch)
    return Components(method=method, build_model=lambda: models.build_model(TINY, method),
                      param_groups=models.param_groups, make_loader=loader)


@pytest.mark.slow
def test_data_counts_after_a_resume_equal_an_uninterrupted_run(tmp_path):
    samples = [{"__key__": f"k{i:03d}", "png": _png(i), "json": json.dumps({"caption": f"thing {i}"}).encode()}
               for i in range(40)]
    for i in (3, 17, 29):
        samples[i]["json"] = json.dumps({"caption": "x", "boxes": 5}).encode()
    write_shard(tmp_path / "shards" / "s.tar", samples)
    cfg = cfg_for("clip", steps=8, checkpoint_every=2)
    fit(cfg, tmp_path / "a", _shard_parts(tmp_path / "shards"))
    fit(cfg, tmp_path / "b", _shard_parts(tmp_path / "shards"), stop_after=5)
    fit(cfg, tmp_path / "b", _shard_parts(tmp_path / "shards"))
    a = json.loads((tmp_path / "a" / "data_stats.json").read_text())
    b = json.loads((tmp_path / "b" / "data_stats.json").read_text())
    assert a == b and a["skipped_by_reason"] == {"bad_boxes": 3} and a["records_read"] >= 64


def test_a_process_whose_parent_dies_stops(tmp_path):
    child = textwrap.dedent("""
        import sys, time
        from hyplib.training.orphan import exit_with_parent
        assert exit_with_parent(interval=0.1)
        print("ready", flush=True)
        time.sleep(60)
    """)
    parent = textwrap.dedent(f"""
        import subprocess, sys, time
        p = subprocess.Popen([sys.executable, "-c", {child!r}], start_new_session=True)  # as Jupyter does
        print(p.pid, flush=True)
        time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True, env=env)
    pid = int(proc.stdout.readline())
    assert proc.stdout.readline().strip() == "ready"
    proc.kill()  # kill -9 of the job: the child gets no signal from it
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def _notebook(path, source):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.slow
def test_notebook_kernel_start_failure_is_retried(tmp_path, monkeypatch, capsys):
    import papermill.cli

    from hyplib import papermill_retry

    monkeypatch.setattr(papermill_retry, "BACKOFF_S", 0.0)
    real, calls = papermill.cli.execute_notebook, []

    def flaky(*args, **kwargs):  # the first start loses the port race
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill.cli, "execute_notebook", flaky)
    nb = _notebook(tmp_path / "ok.ipynb", "x = 6 * 7\nprint(x)")
    assert papermill_retry.main([str(nb), str(tmp_path / "out.ipynb"), "--no-progress-bar", "-k", "python3"]) == 0
    assert len(calls) == 2 and "retrying (2/3)" in capsys.readouterr().err
    assert papermill_retry.cells_ran(tmp_path / "out.ipynb")


@pytest.mark.slow
def test_notebook_failing_cell_is_not_retried(tmp_path, monkeypatch, capsys):
    from jupyter_client.kernelspec import NoSuchKernel
    from papermill.exceptions import PapermillExecutionError

    from hyplib import papermill_retry

    nb = _notebook(tmp_path / "bad.ipynb", "raise ValueError('boom')")
    with pytest.raises(PapermillExecutionError, match="boom"):
        papermill_retry.main([str(nb), str(tmp_path / "out.ipynb"), "--no-progress-bar", "-k", "python3"])
    assert "retrying" not in capsys.readouterr().err
    monkeypatch.setattr(papermill_retry, "BACKOFF_S", 0.0)
    with pytest.raises(NoSuchKernel):  # no such kernel: fails before any cell, retried, then raised
        papermill_retry.main([str(nb), str(tmp_path / "out2.ipynb"), "--no-progress-bar", "-k", "no-such-kernel"])
    assert "retrying (3/3)" in capsys.readouterr().err


def test_training_log_is_no_declared_output():
    """Snakemake deletes an interrupted job's declared outputs before rerunning it; the log of a
    resumed run must survive, so no rule declares log.jsonl (final.pt stands for it)."""
    for rule in (ROOT / "workflow" / "rules").glob("*.smk"):
        assert "log.jsonl\"," not in rule.read_text().replace("'", '"').split("params:")[0], rule.name


def test_papermill_wrapper_answers_help_and_usage_errors(capsys):
    from hyplib import papermill_retry

    assert papermill_retry.main(["--help"]) == 0
    assert "NOTEBOOK_PATH" in capsys.readouterr().out
    assert papermill_retry.main(["--no-such-option"]) == 2
    assert "No such option '--no-such-option'" in capsys.readouterr().err


def test_papermill_wrapper_skips_the_iri_parser_and_nbformat_still_validates(tmp_path):
    """The skipped import only removes jsonschema's ``iri`` check; notebooks still validate."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from hyplib.papermill_retry import skip_unused_format_parser\n"
            "skip_unused_format_parser()\n"
            "import jsonschema, nbformat\n"
            "assert 'iri' not in jsonschema.FormatChecker().checkers\n"
            "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1')])\n"
            "nbformat.validate(nb)\n"
            "bad = nbformat.v4.new_notebook(); bad.cells = [{'cell_type': 'code'}]\n"
            "try:\n"
            "    nbformat.validate(bad)\n"
            "except nbformat.ValidationError:\n"
            "    print('invalid caught')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "invalid caught"
