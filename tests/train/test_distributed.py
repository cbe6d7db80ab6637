"""DDP with 2 CPU processes (gloo on 127.0.0.1): one step equals single-process training on the same global
batch; a run completes, is interrupted, resumes, and ends bit-identical to an uninterrupted DDP run."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn
from train_helpers import TinyNet, base_cfg, loaders, read_rows, strip_timing

from cnnkit.data import InMemoryLoader
from cnnkit.train import Trainer, TrainingInterrupted
from cnnkit.train.distributed import init_distributed, shutdown_distributed

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NoBN(nn.Module):
    """No BatchNorm: per-rank batch statistics would (rightly) differ from full-batch ones."""

    input_shape = (1, 8, 8)

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(nn.functional.max_pool2d(torch.relu(self.conv(x)), 2).flatten(1))


def one_step(model: nn.Module, rank: int, world: int, batch: int) -> Trainer:
    from train_helpers import synthetic

    x, y = synthetic(16)
    loader = InMemoryLoader(x, y, batch_size=batch, shuffle=True, mean=[0.3], std=[0.25], seed=0, rank=rank, world_size=world)
    cfg = {"train": {"epochs": 1, "threads": 1}, "optim": {"name": "sgd", "lr": 1.0, "momentum": 0.0}}
    return Trainer(model, train_loader=loader, cfg=cfg, quiet=True, dist=_dist(rank, world))


def _dist(rank: int, world: int):
    from cnnkit.train.distributed import DistInfo

    return DistInfo(rank, world, rank) if world > 1 else DistInfo()


def _cfg():
    return base_cfg(epochs=3, ema={"decay": 0.9})


def _stopper(rank: int, at: int):
    def fn(t: Trainer) -> None:
        if rank == 1 and t.global_step == at:  # only one rank is signalled; the flag is all-reduced
            t.request_stop()

    return fn


def _worker(rank: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank))
    info = init_distributed("cpu")
    tmp_path = Path(tmp)
    try:
        torch.manual_seed(0)
        t = one_step(NoBN(), rank, WORLD, batch=8)
        t.fit()
        if rank == 0:
            save_file(dict(t.raw_model.state_dict()), str(tmp_path / "ddp_step.safetensors"))
        for name, stop in (("ref", None), ("cut", 4)):
            torch.manual_seed(0)
            t = Trainer(TinyNet(), cfg=_cfg(), run_dir=tmp_path / name, quiet=True, dist=info,
                        on_step_end=_stopper(rank, stop) if stop else None, **loaders(rank=rank, world_size=WORLD))
            try:
                t.fit()
            except TrainingInterrupted:
                if rank == 0:
                    (tmp_path / "rows_at_interrupt").write_text(str(len(read_rows(tmp_path / name))))
                continue
            if rank == 0:
                save_file(dict(t.raw_model.state_dict()), str(tmp_path / f"{name}.safetensors"))
        # A fresh trainer (other initial weights) resumes the interrupted run from its checkpoints.
        torch.manual_seed(99)
        t = Trainer(TinyNet(), cfg=_cfg(), run_dir=tmp_path / "cut", quiet=True, dist=info,
                    **loaders(rank=rank, world_size=WORLD))
        t.fit(resume=True)
        if rank == 0:
            save_file(dict(t.raw_model.state_dict()), str(tmp_path / "resumed.safetensors"))
    finally:
        shutdown_distributed(info)


def test_two_rank_gloo_ddp(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)

    # One SGD step (lr 1) on 2 x 8 sharded samples == one step on the same 16 samples in one process.
    torch.manual_seed(0)
    single = one_step(NoBN(), 0, 1, batch=16)
    w0 = {k: v.clone() for k, v in single.raw_model.state_dict().items()}
    single.fit()
    ddp = load_file(str(tmp_path / "ddp_step.safetensors"))
    for k, v in single.raw_model.state_dict().items():
        assert not torch.equal(v, w0[k])  # a real step happened
        torch.testing.assert_close(ddp[k], v, rtol=1e-5, atol=1e-6)

    # 3 steps per epoch per rank; rank 1 asks at step 4, both ranks stop after step 5, in epoch 2.
    assert (tmp_path / "rows_at_interrupt").read_text() == "1"
    ref, got = load_file(str(tmp_path / "ref.safetensors")), load_file(str(tmp_path / "resumed.safetensors"))
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    rows = read_rows(tmp_path / "ref")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert strip_timing(rows) == strip_timing(read_rows(tmp_path / "cut"))


@pytest.mark.slow
def test_torchrun_fit_writes_one_run_folder_and_resumes(tmp_path):
    import subprocess
    import sys

    helper = Path(__file__).with_name("train_helpers.py")
    run_dir = tmp_path / "run"
    base = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
            f"--master_port={_free_port()}", str(helper), str(run_dir), "--fit"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(helper.parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(base, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("run folder: ") == 1  # rank 0 only
    summary = __import__("json").loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 2
    again = subprocess.run([*base[:-2], str(run_dir), "--fit", "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert __import__("json").loads((run_dir / "summary.json").read_text())["test_accuracy"] == summary["test_accuracy"]
