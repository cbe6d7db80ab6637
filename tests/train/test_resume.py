"""Exact resume: interrupted-and-resumed runs end bit-identical to uninterrupted ones (CPU, deterministic)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.train import RESUMABLE_EXIT_CODE, Trainer, TrainingInterrupted

from .train_helpers import TinyNet, base_cfg, loaders, read_rows, strip_timing

HELPER = Path(__file__).with_name("train_helpers.py")


def cfg_full(**kw):
    # EMA, early stopping (never triggering), validation, AdamW, cosine with warm-up, dropout, BN: all state.
    return base_cfg(ema={"decay": 0.9}, early_stopping={"monitor": "val_loss", "mode": "min", "patience": 50}, **kw)


def run(tmp: Path, *, stop_at: int | None = None, resume: bool = False, seed_model: int = 0) -> Trainer:
    torch.manual_seed(seed_model)
    def stopper(t: Trainer) -> None:
        if stop_at is not None and t.global_step == stop_at:
            t.request_stop()

    trainer = Trainer(TinyNet(), cfg=cfg_full(), run_dir=tmp, quiet=True, on_step_end=stopper, **loaders())
    trainer.fit(resume=resume)
    return trainer


def assert_same_state(a: Trainer, b: Trainer) -> None:
    for (k, v), (k2, w) in zip(a.raw_model.state_dict().items(), b.raw_model.state_dict().items()):
        assert k == k2 and torch.equal(v, w), k
    for k, v in a.ema.state_dict().items():
        assert torch.equal(v, b.ema.state_dict()[k]), f"ema {k}"


@pytest.mark.parametrize("stop_at", [3, 6, 13])  # mid-epoch, exactly an epoch end (6 steps/epoch), later
def test_stop_and_resume_is_bit_identical(tmp_path, stop_at):
    ref = run(tmp_path / "ref")
    with pytest.raises(TrainingInterrupted, match="resume with cnnkit train --resume") as info:
        run(tmp_path / "cut", stop_at=stop_at)
    assert info.value.exit_code == RESUMABLE_EXIT_CODE == 75
    rows_before = len(read_rows(tmp_path / "cut"))
    assert rows_before == stop_at // 6
    resumed = run(tmp_path / "cut", resume=True, seed_model=123)  # different init: everything comes from the checkpoint
    assert_same_state(ref, resumed)
    assert strip_timing(read_rows(tmp_path / "ref")) == strip_timing(read_rows(tmp_path / "cut"))
    assert [r["epoch"] for r in read_rows(tmp_path / "cut")] == [1, 2, 3, 4]


def test_metrics_rows_after_checkpoint_are_dropped_on_resume(tmp_path):
    with pytest.raises(TrainingInterrupted):
        run(tmp_path, stop_at=9)
    # A crash after epoch 1's checkpoint could leave a row the checkpoint does not know about.
    with open(tmp_path / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "train_loss": 0.0}\n')
    run(tmp_path, resume=True)
    assert [r["epoch"] for r in read_rows(tmp_path)] == [1, 2, 3, 4]


def test_resume_skips_torn_newest_checkpoint(tmp_path, capsys):
    ref = run(tmp_path / "ref")
    with pytest.raises(TrainingInterrupted):
        run(tmp_path / "cut", stop_at=11)
    ckdir = tmp_path / "cut" / "checkpoints"
    newest = sorted(p for p in ckdir.iterdir() if p.name.startswith("step-"))[-1]
    data = (newest / "state.safetensors").read_bytes()
    (newest / "state.safetensors").write_bytes(data[: len(data) // 2])  # torn write
    torch.manual_seed(0)
    t = Trainer(TinyNet(), cfg=cfg_full(), run_dir=tmp_path / "cut", quiet=False, **loaders())
    t.fit(resume=True)
    out = capsys.readouterr().out
    assert "skipping" in out and newest.name in out and "falling back" in out
    assert_same_state(ref, t)


def _child(run_dir: Path, *extra: str, sleep: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HELPER.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(HELPER), str(run_dir), "--epochs", "6", "--sleep", str(sleep), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _checkpoints(run_dir: Path) -> set[str]:
    ck = run_dir / "checkpoints"
    return {p.name for p in ck.iterdir() if p.name.startswith("step-")} if ck.is_dir() else set()


def _wait_for_new_checkpoint(run_dir: Path, proc: subprocess.Popen, timeout: float = 90) -> None:
    before = _checkpoints(run_dir)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _checkpoints(run_dir) - before:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.01)
    raise AssertionError("no new checkpoint appeared")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_finishes_the_step_saves_and_exits_resumable(tmp_path, sig):
    ref = run(tmp_path / "ref")
    torch.manual_seed(0)
    seen = []

    def send(t: Trainer) -> None:
        seen.append(t.global_step)
        if t.global_step == 7:
            os.kill(os.getpid(), sig)  # delivered to the handler the trainer installed

    t = Trainer(TinyNet(), cfg=cfg_full(), run_dir=tmp_path / "cut", quiet=True, on_step_end=send, **loaders())
    with pytest.raises(TrainingInterrupted) as info:
        t.fit()
    assert str(info.value) == f"interrupted; resume with cnnkit train --resume {tmp_path / 'cut'}"
    assert info.value.exit_code == 75 and seen[-1] == 7  # stopped right after the step it was in
    assert signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL)  # handlers restored
    resumed = run(tmp_path / "cut", resume=True)
    assert_same_state(ref, resumed)


def test_sigkill_at_a_random_step_then_resume_is_bit_identical(tmp_path):
    """kill -9 a training subprocess at a random moment; resuming ends with the same weights and metrics
    as an uninterrupted run, bit for bit."""
    from .train_helpers import main

    assert main([str(tmp_path / "ref"), "--epochs", "6"]) == 0
    ref = load_file(str(tmp_path / "ref" / "final.safetensors"))
    run_dir = tmp_path / "cut"
    proc = _child(run_dir, sleep=0.02)  # 36 steps of >= 20 ms
    _wait_for_new_checkpoint(run_dir, proc)
    time.sleep(random.Random(5).uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    assert not (run_dir / "final.safetensors").exists()  # it really was cut short

    done = _child(run_dir, "--resume")
    out, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    got = load_file(str(run_dir / "final.safetensors"))
    assert got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k
    assert strip_timing(read_rows(tmp_path / "ref")) == strip_timing(read_rows(run_dir))


def test_disk_full_during_a_checkpoint_keeps_the_previous_one_resumable(tmp_path, monkeypatch):
    """ENOSPC while writing step 4's checkpoint: a one-line error naming the folder and the fix, no temporary
    files, step 2's checkpoint intact; after freeing space, resuming ends bit-identical to an uninterrupted run."""
    import errno

    import cnnkit.train.checkpoint as ckmod
    from cnnkit.errors import CnnkitError

    ref = run(tmp_path / "ref")
    real = ckmod._write_file

    def fill_disk(t: Trainer) -> None:
        if t.global_step == 3:
            def full(path, data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            monkeypatch.setattr(ckmod, "_write_file", full)

    torch.manual_seed(0)
    t = Trainer(TinyNet(), cfg=cfg_full(), run_dir=tmp_path / "cut", quiet=True, on_step_end=fill_disk, **loaders())
    with pytest.raises(CnnkitError) as info:
        t.fit()
    cut = tmp_path / "cut"
    assert str(info.value) == (
        f"cannot write {cut / 'checkpoints' / 'step-000000004'}: No space left on device; free some disk space, "
        f"then cnnkit train --resume {cut} (the previous checkpoint is intact)"
    )
    assert sorted(p.name for p in (cut / "checkpoints").iterdir()) == ["step-000000002"]
    monkeypatch.setattr(ckmod, "_write_file", real)  # space freed
    resumed = run(cut, resume=True, seed_model=123)
    assert_same_state(ref, resumed)
    assert strip_timing(read_rows(tmp_path / "ref")) == strip_timing(read_rows(cut))


def test_fast_recipe_state_resumes_bit_identical(tmp_path):
    # The fast recipe's extra state: Muon's momentum buffers, the Lookahead EMA (cubic ramp) and the
    # alternating flips (a pure function of seed and epoch): stopping mid-epoch and resuming changes nothing.
    from cnnkit.config.schema import AugmentConfig
    from cnnkit.data.augment import BatchAugment

    cfg = base_cfg(ema={"decay": 0.8, "every_steps": 2, "ramp": "cubic", "lookahead": True})
    cfg["optim"] = {"name": "muon", "lr": 0.05, "muon_lr": 0.05, "momentum": 0.85, "nesterov": True}

    def go(run_dir: Path, stop_at: int | None = None, resume: bool = False) -> Trainer:
        torch.manual_seed(0 if not resume else 99)
        ld = loaders()
        ld["train_loader"].augment = BatchAugment(AugmentConfig(hflip=True, hflip_alternate=True))

        def stopper(t: Trainer) -> None:
            if stop_at is not None and t.global_step == stop_at:
                t.request_stop()

        t = Trainer(TinyNet(), cfg=cfg, run_dir=run_dir, quiet=True, on_step_end=stopper, **ld)
        t.fit(resume=resume)
        return t

    ref = go(tmp_path / "ref")
    with pytest.raises(TrainingInterrupted):
        go(tmp_path / "cut", stop_at=9)
    resumed = go(tmp_path / "cut", resume=True)
    assert_same_state(ref, resumed)
    assert strip_timing(read_rows(tmp_path / "ref")) == strip_timing(read_rows(tmp_path / "cut"))
