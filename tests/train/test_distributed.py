"""DDP with 2 CPU processes (gloo on 127.0.0.1): one step equals single-process training on the same global
batch; a run completes, is interrupted, resumes, and ends bit-identical to an uninterrupted DDP run; a
checkpoint rank 0 cannot write stops every rank; torchrun with SIGTERM saves and reports once."""

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file
from torch import nn

from cnnkit.data import InMemoryLoader
from cnnkit.train import Trainer, TrainingInterrupted
from cnnkit.train.distributed import init_distributed, shutdown_distributed

from .train_helpers import TinyNet, base_cfg, loaders, read_rows, strip_timing

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
    from .train_helpers import synthetic

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
            except TrainingInterrupted as exc:
                (tmp_path / f"interrupted_rank{rank}").write_text(str(exc.rank))
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
        _full_disk_on_rank_0(rank, info, tmp_path)
    finally:
        shutdown_distributed(info)


def _full_disk_on_rank_0(rank: int, info, tmp_path: Path) -> None:
    """Rank 0 cannot write a checkpoint: every rank stops at once (none waits in a collective for ever)."""
    import errno

    import cnnkit.train.checkpoint as ckmod

    def full(path, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real = ckmod._write_file
    if rank == 0:
        ckmod._write_file = full
    try:
        torch.manual_seed(0)
        t = Trainer(TinyNet(), cfg=_cfg(), run_dir=tmp_path / "full", quiet=True, dist=info,
                    **loaders(rank=rank, world_size=WORLD))
        t.fit()
    except Exception as exc:  # noqa: BLE001 - the test records which error each rank got
        (tmp_path / f"full_rank{rank}").write_text(f"{type(exc).__name__} {getattr(exc, 'rank', 0)}: {exc}")
    finally:
        ckmod._write_file = real


def test_two_rank_gloo_ddp(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    try:
        mp.spawn(_worker, args=(_free_port(), str(tmp_path / "a")), nprocs=WORLD, join=True)
        tmp_path = tmp_path / "a"
    except mp.ProcessExitedException:
        # The known intermittent gloo abort (a worker killed by SIGABRT in torch's C++ runtime, no Python
        # error; see the torchrun SIGTERM test), or the free port taken by another test in between: retried
        # once in fresh folders. A Python error in a worker (ProcessRaisedException) is never retried.
        mp.spawn(_worker, args=(_free_port(), str(tmp_path / "b")), nprocs=WORLD, join=True)
        tmp_path = tmp_path / "b"

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
    # Every rank stops; each knows its rank, so the command line prints the message from rank 0 alone.
    assert [(tmp_path / f"interrupted_rank{r}").read_text() for r in range(WORLD)] == ["0", "1"]
    ref, got = load_file(str(tmp_path / "ref.safetensors")), load_file(str(tmp_path / "resumed.safetensors"))
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    rows = read_rows(tmp_path / "ref")
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert strip_timing(rows) == strip_timing(read_rows(tmp_path / "cut"))

    step2 = tmp_path / "full" / "checkpoints" / "step-000000002"
    assert (tmp_path / "full_rank0").read_text().startswith(f"CheckpointError 0: cannot write {step2}: No space left")
    assert (tmp_path / "full_rank1").read_text() == "OtherRankFailed 1: rank 0 could not write the run folder (its message says why)"


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
    assert out.stdout.count("run folder: ") == 2  # rank 0 only: once at the start, once at the end
    summary = __import__("json").loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["epochs"] == 2
    again = subprocess.run([*base[:-2], str(run_dir), "--fit", "--resume"], capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert __import__("json").loads((run_dir / "summary.json").read_text())["test_accuracy"] == summary["test_accuracy"]


@pytest.mark.slow
def test_torchrun_sigterm_saves_every_rank_prints_once_and_resumes(tmp_path):
    """SIGTERM to torchrun (what a scheduler sends): torchrun forwards it to every worker, the workers agree
    on a step, rank 0 saves every rank's state in one checkpoint and alone prints the one-line message, the
    workers exit 75 and torchrun itself exits 1 (it reports any non-zero worker exit, and its own signal, as
    a failure). Resuming under torchrun, with more or fewer epochs, then completes the run."""
    import json
    import signal
    import subprocess
    import sys
    import time

    from cnnkit.train import read_checkpoint
    from cnnkit.train.checkpoint import list_checkpoints

    run_dir = tmp_path / "run"
    launch = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
              f"--master_port={_free_port()}", "-m", "cnnkit", "train"]
    quick = ["--set", "train.threads=1", "--set", "data.limit_train=256", "--set", "data.batch_size=16",
             "--set", "train.checkpoint.every_steps=2"]
    # Output to files: a full pipe would block the workers.
    with open(tmp_path / "out", "w") as out, open(tmp_path / "err", "w") as errors:
        proc = subprocess.Popen([*launch, "--out", str(run_dir), "--set", "train.epochs=500", *quick],
                                stdout=out, stderr=errors, text=True)
        try:
            deadline = time.time() + 240
            while not list_checkpoints(run_dir / "checkpoints"):
                assert proc.poll() is None and time.time() < deadline, (tmp_path / "err").read_text()[-2000:]
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
            proc.wait()
    err = (tmp_path / "err").read_text()
    assert code == 1, err[-3000:]
    assert err.count(f"cnnkit: error: interrupted; resume with cnnkit train --resume {run_dir}") == 1, err[-3000:]
    newest = read_checkpoint(list_checkpoints(run_dir / "checkpoints")[0])
    assert {"rng/torch/0", "rng/torch/1", "acc/0", "acc/1"} <= set(newest.tensors) and newest.meta["world_size"] == 2
    epochs = newest.meta["epoch"] + 1
    assert epochs < 500, err[-3000:]  # really cut short

    def resume() -> subprocess.CompletedProcess[str]:
        return subprocess.run([*launch[:5], f"--master_port={_free_port()}", *launch[6:], "--resume", str(run_dir),
                               "--set", f"train.epochs={epochs}"], capture_output=True, text=True, timeout=300)

    again = resume()
    # Known open defect (seen in 2 of about 15 runs, only on a loaded machine): a worker of the resumed run
    # aborts with "terminate called without an active exception" (SIGABRT in torch's C++ runtime), with no
    # Python error. Like any interrupted run it resumes from its newest checkpoint, so the same command is
    # retried once; any other failure fails the test. The cause is not found yet.
    retried = again.returncode != 0 and "terminate called without an active exception" in again.stderr
    if retried:
        again = resume()
    assert again.returncode == 0, again.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["epochs"] == epochs and summary["world_size"] == 2 and summary["resumed_from"], summary
    entries = json.loads((run_dir / "env.json").read_text())["resumes"]
    assert len(entries) == 1 + retried, entries  # the aborted attempt is recorded too, before the retry
    entry = entries[0]
    assert entry["changed"] == {"train.epochs": [500, epochs]} and entry["world_size"] == 2
