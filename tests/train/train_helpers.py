"""Shared pieces for the training tests: tiny nets, synthetic data in cnnkit's in-memory loader, and a
command-line entry point that trains in a subprocess (for the SIGKILL / SIGTERM tests).

Run as a script: ``python train_helpers.py RUN_DIR [--resume] [--epochs N] [--sleep S]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from cnnkit.data import InMemoryLoader


class TinyNet(nn.Module):
    """conv(1->4, 3x3) - BN - ReLU - maxpool - dropout - linear; ~300 parameters, 8x8 input."""

    input_shape = (1, 8, 8)

    def __init__(self, num_classes: int = 3, p: float = 0.1, sleep: float = 0.0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(p)
        self.fc = nn.Linear(4 * 4 * 4, num_classes)
        self.sleep = sleep

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.relu(self.bn(self.conv(x)))).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sleep:
            time.sleep(self.sleep)  # slows steps down so a test can kill the process mid-run
        return self.fc(self.drop(self.forward_features(x)))


def synthetic(n: int = 96, num_classes: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 8x8 images whose class is a bright quadrant, plus noise: learnable in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % num_classes
    x = torch.randint(0, 90, (n, 1, 8, 8), generator=g)
    for c in range(num_classes):
        r, col = divmod(c, 2)
        x[y == c, :, r * 4 : r * 4 + 4, col * 4 : col * 4 + 4] += 120
    return x.clamp(0, 255).to(torch.uint8), y


def loaders(
    n: int = 96, batch_size: int = 16, seed: int = 0, rank: int = 0, world_size: int = 1, val: bool = True
) -> dict[str, Any]:
    x, y = synthetic(n, seed=seed)
    xv, yv = synthetic(48, seed=seed + 1)
    stats = dict(mean=[0.3], std=[0.25], seed=seed)
    out = {
        "train_loader": InMemoryLoader(x, y, batch_size=batch_size, shuffle=True, rank=rank, world_size=world_size, **stats),
        "test_loader": InMemoryLoader(xv, yv, batch_size=32, **stats),
    }
    if val:
        out["val_loader"] = InMemoryLoader(xv, yv, batch_size=32, **stats)
    return out


def base_cfg(**train: Any) -> dict[str, Any]:
    """A small deterministic config exercising optimizer state, schedule, EMA and early-stopping state."""
    t = {"epochs": 4, "deterministic": True, "threads": 1, "checkpoint": {"every_steps": 2, "keep_last": 2}}
    t.update(train)
    return {
        "seed": 3,
        "train": t,
        "optim": {"name": "adamw", "lr": 0.01, "weight_decay": 0.01},
        "schedule": {"name": "cosine", "warmup_epochs": 0.5},
    }


def strip_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in rows]


def read_rows(run_dir: Path) -> list[dict[str, Any]]:
    if not (run_dir / "metrics.jsonl").exists():
        return []
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def main(argv: list[str]) -> int:
    from cnnkit.train import Trainer, TrainingInterrupted

    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--sleep", type=float, default=0.0)
    ap.add_argument("--fit", action="store_true", help="run cnnkit.train.fit on digits (for torchrun)")
    args = ap.parse_args(argv)
    if args.fit:
        from cnnkit.config import load_config
        from cnnkit.train import fit

        quick = ["train.epochs=2", "train.threads=1", "data.limit_train=256", "model.variant=modern",
                 "optim.name=adam", "optim.lr=0.003", "data.val_fraction=0.25", "train.checkpoint.every_steps=2"]
        try:
            fit(None if args.resume else load_config(None, quick), out=args.run_dir, resume=args.run_dir if args.resume else None)
        except TrainingInterrupted as exc:
            print(exc, flush=True)
            return exc.exit_code
        return 0
    torch.manual_seed(0)
    model = TinyNet(sleep=args.sleep)
    cfg = base_cfg(epochs=args.epochs, ema={"decay": 0.9})
    trainer = Trainer(model, cfg=cfg, run_dir=args.run_dir, quiet=True, **loaders())
    try:
        trainer.fit(resume=args.resume)
    except TrainingInterrupted as exc:
        print(exc, flush=True)
        return exc.exit_code
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in trainer.raw_model.state_dict().items()}, str(Path(args.run_dir) / "final.safetensors"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
