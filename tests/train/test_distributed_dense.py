"""DDP with 2 CPU processes (gloo on 127.0.0.1) for the dense tasks: a segmentation step on 2 x 4 sharded
scenes equals one single-process step on the same 8 scenes (no BatchNorm, no augmentation: then each
rank's per-pixel mean has the same denominator, so DDP's gradient average is the full batch's); a detection
run completes on 2 ranks, writes one run folder with ``test_map`` and a run cut after one epoch and resumed ends bit-identical to an uninterrupted one.

Each rank runs :func:`cnnkit.train.fit` as ``torchrun -m cnnkit train`` would (the environment variables
torchrun sets, then fit's own ``init_distributed``), spawned here to save torchrun's agent start-up.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch.multiprocessing as mp
from safetensors.numpy import load_file

from cnnkit.config import load_config
from cnnkit.train import fit

WORLD = 2
ROOT = Path(__file__).resolve().parents[2]
# SGD without momentum: a step is lr x the (averaged) gradient, so the two runs must agree to rounding.
SEG = [
    "task=segmentation", "model.name=unet", "model.base_width=2", "model.depth=2", "model.padding=same",
    "model.batch_norm=false", "data.name=scenes", "data.num_train=8", "data.num_test=4", "data.canvas=[32,32]",
    "data.object_size=[8,16]", "data.eval_batch_size=4", "data.augment.translate=0", "train.epochs=1", "train.threads=1",
    "optim.name=sgd", "optim.lr=0.5", "optim.momentum=0", "schedule.name=none",
]
DET = ["data.scenes.num_train=8", "data.scenes.num_test=4", "data.batch_size=2", "data.eval_batch_size=4",
       "model.representation=16", "train.threads=1", "train.checkpoint.every_epochs=1",
       "schedule.name=none"]  # a cosine over 1 epoch and one over 2 would differ in the first epoch already


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, job: tuple[str | None, list[str], str, bool]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank))
    recipe, settings, out, resume = job
    fit(load_config(recipe, settings), out=None if resume else out, resume=out if resume else None)


def _spawn(jobs: list[tuple[str | None, list[str], str, bool]]) -> None:
    # One fit per process group, as under torchrun: fit tears its group down at the end, and a second
    # init_process_group in the same processes on the same port waits for ever.
    for job in jobs:
        try:
            mp.spawn(_worker, args=(_free_port(), job), nprocs=WORLD, join=True)
        except mp.ProcessExitedException:
            # The known intermittent gloo abort (see test_distributed.py), retried once; a resumed run
            # resumes again, a fresh one starts over. A Python error in a worker is never retried.
            if not job[3]:
                for p in sorted(Path(job[2]).rglob("*"), reverse=True):
                    p.unlink() if p.is_file() else p.rmdir()
            mp.spawn(_worker, args=(_free_port(), job), nprocs=WORLD, join=True)


@pytest.mark.slow
def test_segmentation_step_on_two_ranks_equals_the_full_batch(tmp_path: Path) -> None:
    _spawn([(None, [*SEG, "data.batch_size=4"], str(tmp_path / "ddp"), False)])
    fit(load_config(None, [*SEG, "data.batch_size=8"]), out=tmp_path / "single")
    ddp, single = load_file(tmp_path / "ddp" / "model.safetensors"), load_file(tmp_path / "single" / "model.safetensors")
    assert ddp.keys() == single.keys()
    for k in ddp:
        np.testing.assert_allclose(ddp[k], single[k], rtol=1e-4, atol=1e-6, err_msg=k)
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and 0 <= summary["test_miou"] <= 1
    assert json.loads((tmp_path / "single" / "summary.json").read_text())["world_size"] == 1
    # The step was real: with a negligible lr the weights stay where the (same, seeded) initialisation put them.
    fit(load_config(None, [*SEG, "data.batch_size=8", "optim.lr=1e-9"]), out=tmp_path / "still")
    still = load_file(tmp_path / "still" / "model.safetensors")
    assert any(not np.allclose(still[k], single[k]) for k in single)


@pytest.mark.slow
def test_detection_trains_and_resumes_on_two_ranks(tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    recipe = str(ROOT / "configs" / "detection-faster-rcnn.yaml")
    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    # Two epochs straight; one epoch, then resumed to two (the checkpoint holds both ranks' states).
    _spawn([(recipe, [*DET, "train.epochs=2"], full, False), (recipe, [*DET, "train.epochs=1"], cut, False),
            (recipe, [*DET, "train.epochs=2"], cut, True)])
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["world_size"] == 2 and 0 <= summary["test_map"] <= summary["test_map50"] <= 1
    resumed = json.loads((tmp_path / "cut" / "summary.json").read_text())
    assert resumed["resumed_from"] and resumed["test_map"] == summary["test_map"]
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
