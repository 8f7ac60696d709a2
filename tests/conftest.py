"""Shared fixtures: dtype x seed grids with per-dtype tolerances, and a network guard."""
import socket

import pytest
import torch

torch.set_num_threads(1)

DTYPES = [torch.float32, torch.float64]
SEEDS = [0, 1, 2]
TOL = {torch.float32: dict(rtol=2e-4, atol=2e-5), torch.float64: dict(rtol=1e-9, atol=1e-10)}


@pytest.fixture(params=DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def dtype(request):
    return request.param


@pytest.fixture(params=SEEDS, ids=lambda s: f"seed{s}")
def gen(request):
    return torch.Generator().manual_seed(request.param)


@pytest.fixture
def tol(dtype):
    return TOL[dtype]


class _NoNetwork(socket.socket):
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and (host.startswith("127.") or host in ("localhost", "::1")):
            return super().connect(address)
        if self.family == socket.AF_UNIX:
            return super().connect(address)
        raise RuntimeError(f"tests must run offline; attempted connection to {address!r}")


@pytest.fixture
def kernel_threads(monkeypatch):
    """``kernel_threads(n)``: the C kernels of hyplib.native split every call over ``n`` threads,
    the tests' small calls included (below MIN_ENTRIES_PER_THREAD they would run in one range)."""
    from hyplib import native

    def split_over(threads: int) -> None:
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
        monkeypatch.setattr(native, "MIN_ENTRIES_PER_THREAD", 1)
    return split_over


@pytest.fixture(autouse=True)
def _block_network(monkeypatch):
    """Everything must work offline: any non-loopback connection fails the test."""
    monkeypatch.setattr(socket, "socket", _NoNetwork)


def committed_parameters(path) -> dict:
    """Assert a notebook is committed clean (first code cell tagged `parameters`, no outputs or
    execution counts) and return its parameters (plain literals, run in isolation)."""
    import nbformat

    from hyplib.workflow import notebook_parameters

    code = [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), f"{path}: first code cell is not tagged"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path
    return notebook_parameters(path)


def write_real_data_stand_ins(paths: dict, root) -> None:
    """Minimal stand-ins for real-data ``paths`` (keys of ``hyplib.data.real.PATHS``) under
    ``root``: a folder, or a file whose contents pass the checks made before any job (JSON
    top-level keys, csv header, one SugarCrepe subset); ``*`` in a shard pattern becomes one shard."""
    from pathlib import Path

    from hyplib.data.real import PATHS

    contents = {"coco_captions": '{"images": [], "annotations": []}', "flickr_karpathy": '{"images": []}',
                "hierarcaps": "id,captions,image_url\n"}
    for key, rel in paths.items():
        target = Path(root) / rel.replace("*", "shard-000")
        if PATHS[key].kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(contents.get(key, ""))
    if "sugarcrepe" in paths:
        (Path(root) / paths["sugarcrepe"] / "add_obj.json").write_text("{}")
