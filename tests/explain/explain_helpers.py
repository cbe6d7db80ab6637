"""A synthetic task whose deciding region is known (a bright square: left half = class 0, right half =
class 1), a tiny CNN trained on it, and a run folder of that CNN for the run-level API."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from cnnkit.config import config_to_yaml, validate_config
from cnnkit.runs import save_model

SIZE = 16
SQUARE = 4
SPEC = {
    "input": [1, SIZE, SIZE],
    "layers": [
        {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"max_pool2d": {"kernel_size": 2}},
        {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"flatten": {}}, {"linear": {"out_features": 2}},
    ],
}


def square_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images (n, 1, 16, 16) of faint noise plus a bright 4x4 square; label 1 iff the square lies in the
    right half. Also returns the square's top-left corner (n, 2)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    top = torch.randint(0, SIZE - SQUARE + 1, (n,), generator=g)
    left = torch.randint(0, SIZE // 2 - SQUARE + 1, (n,), generator=g) + y * (SIZE // 2)
    x = 0.1 * torch.randn(n, 1, SIZE, SIZE, generator=g)
    for i in range(n):
        x[i, 0, top[i] : top[i] + SQUARE, left[i] : left[i] + SQUARE] += 2.0
    return x, y, torch.stack([top, left], 1)


GAP_SPEC = {
    "input": [1, SIZE, SIZE],
    "layers": [
        {"conv2d": {"out_channels": 8, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"max_pool2d": {"kernel_size": 2}},
        {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"global_avg_pool2d": {}}, {"linear": {"out_features": 2}},
    ],
}


def shape_task(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The deciding object, a filled 4x4 square (label 1) or a hollow one (label 0), at a random place in
    a random half, and a distractor (a bright 2x2 dot) in the other half. Returns the object's corner."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=g)
    side = torch.randint(0, 2, (n,), generator=g)
    top = torch.randint(0, SIZE - SQUARE + 1, (n,), generator=g)
    left = torch.randint(0, SIZE // 2 - SQUARE + 1, (n,), generator=g) + side * (SIZE // 2)
    dot_top = torch.randint(0, SIZE - 2 + 1, (n,), generator=g)
    dot_left = torch.randint(0, SIZE // 2 - 2 + 1, (n,), generator=g) + (1 - side) * (SIZE // 2)
    x = 0.1 * torch.randn(n, 1, SIZE, SIZE, generator=g)
    for i in range(n):
        t, l = int(top[i]), int(left[i])
        x[i, 0, t : t + SQUARE, l : l + SQUARE] += 2.0
        if y[i] == 0:
            x[i, 0, t + 1 : t + SQUARE - 1, l + 1 : l + SQUARE - 1] -= 2.0
        x[i, 0, dot_top[i] : dot_top[i] + 2, dot_left[i] : dot_left[i] + 2] += 2.0
    return x, y, torch.stack([top, left], 1)


def trained_shape_model(seed: int = 0, steps: int = 120) -> nn.Module:
    """A global-average-pooling CNN trained on :func:`shape_task` (Grad-CAM's setting)."""
    return _train(GAP_SPEC, shape_task, seed, steps, lr=1e-2)


def trained_square_model(seed: int = 0, steps: int = 100) -> nn.Module:
    return _train(SPEC, square_task, seed, steps, lr=3e-3)


def _train(spec: dict, task, seed: int, steps: int, lr: float) -> nn.Module:  # type: ignore[no-untyped-def]
    from cnnkit.models import build_model

    torch.manual_seed(seed)
    model = build_model({"spec": spec})
    x, y, _ = task(1024, seed + 100)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: threads only contend on a shared machine
    try:
        for step in range(steps):
            i = torch.arange(step * 64, step * 64 + 64) % len(x)
            loss = nn.functional.cross_entropy(model(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def make_digits_run(path: Path, *, steps: int = 80, seed: int = 0) -> Path:
    """A run folder: the square task's architecture with 10 outputs, trained briefly on the 8x8 digits
    resized to 16x16 (the recorded preprocessing), for the run-level API (explain, audit)."""
    from cnnkit.data import build_data
    from cnnkit.models import build_model

    spec = {**SPEC, "layers": SPEC["layers"][:-1] + [{"linear": {"out_features": 10}}]}
    cfg = validate_config({"name": "digits16", "seed": seed, "data": {"name": "digits", "batch_size": 64},
                           "model": {"name": None, "spec": spec}})
    torch.manual_seed(seed)
    model = build_model(cfg.model.as_dict())
    bundle = build_data(cfg.data, input_shape=(1, SIZE, SIZE), device="cpu", seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        step = epoch = 0
        while step < steps:
            for x, y in bundle.train.epoch_batches(epoch):
                loss = nn.functional.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step >= steps:
                    break
            epoch += 1
    finally:
        torch.set_num_threads(threads)
    save_model(path, model.eval(), build=cfg.model.as_dict(), preprocessing=bundle.preprocessing,
               class_names=bundle.class_names)
    (path / "config.yaml").write_text(config_to_yaml(cfg), encoding="utf-8")
    return path
