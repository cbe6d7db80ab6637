"""A tiny segmentation run for the command-line tests (a few seconds on 2 cores)."""

from __future__ import annotations

from pathlib import Path

from cnnkit.cli import main

TINY = [
    "task=segmentation", "model.name=unet", "model.base_width=2", "model.depth=2", "model.padding=same",
    "model.batch_norm=true", "data.name=scenes", "data.num_train=24", "data.num_test=8", "data.canvas=[32,32]",
    "data.object_size=[8,16]", "data.batch_size=8", "data.eval_batch_size=8", "data.augment.translate=2",
    "data.augment.hflip=true", "train.epochs=2", "train.threads=1", "optim.name=adam", "optim.lr=0.01",
    "train.checkpoint.every_epochs=1", "schedule.name=none",
]


def train_tiny(out: Path, *extra: str) -> int:
    args = ["train", "--out", str(out), "--quiet"]
    for setting in [*TINY, *extra]:
        args += ["--set", setting]
    return main(args)
