"""A small trained run folder (a tiny spec CNN on the 8x8 digits, ~150 SGD steps), built without the
trainer so the evaluate tests do not depend on its speed."""

from __future__ import annotations

from pathlib import Path

import torch

from cnnkit.config import config_to_yaml, validate_config
from cnnkit.data import build_data
from cnnkit.models import build_model
from cnnkit.runs import save_model

SPEC = {
    "input": [1, 8, 8],
    "layers": [
        {"conv2d": {"out_channels": 16, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"max_pool2d": {"kernel_size": 2}},
        {"conv2d": {"out_channels": 32, "kernel_size": 3, "padding": 1}}, {"relu": {}},
        {"max_pool2d": {"kernel_size": 2}},
        {"flatten": {}}, {"linear": {"out_features": 10}},
    ],
}


def make_run(path: Path, *, val_fraction: float = 0.2, steps: int = 150, seed: int = 0) -> Path:
    cfg = validate_config({"seed": seed, "name": "tiny",
                           "data": {"name": "digits", "val_fraction": val_fraction},
                           "model": {"name": None, "spec": SPEC}})
    torch.manual_seed(seed)
    model = build_model(cfg.model.as_dict(), num_classes=10, in_channels=1)
    bundle = build_data(cfg.data, input_shape=tuple(model.input_shape), device="cpu", seed=seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: threads only contend on a shared machine
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    step = 0
    epoch = 0
    while step < steps:
        for x, y in bundle.train.epoch_batches(epoch):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
        epoch += 1
    torch.set_num_threads(threads)
    model.eval()
    save_model(path, model, build=cfg.model.as_dict(), preprocessing=bundle.preprocessing,
               class_names=bundle.class_names)
    (path / "config.yaml").write_text(config_to_yaml(cfg), encoding="utf-8")
    return path


