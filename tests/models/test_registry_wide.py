"""One test over the whole model registry, so a newly registered model is tested for free (timm's pattern).

For every name in ``list_models()``: complete metadata; the parameter count at default arguments equals the
registered (published or hand-computed) count, built on the meta device so 138M-parameter nets cost nothing;
and forward + backward at a small setting with finite gradients, eval determinism and
``forward_head(forward_features(x)) == forward(x)``. A model without a small setting below fails the suite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

from cnnkit.models import create_model, list_models, model_info

# name -> (builder kwargs for a small, fast instance, input shape without batch, input dtype)
SMALL: dict[str, tuple[dict[str, Any], tuple[int, ...], torch.dtype]] = {
    "lenet5": ({}, (1, 32, 32), torch.float32),
    "alexnet": ({"num_classes": 10}, (3, 67, 67), torch.float32),
    "vgg11": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "vgg16": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "nin": ({}, (3, 16, 16), torch.float32),
    "googlenet": ({"num_classes": 10}, (3, 80, 80), torch.float32),
    "resnet18": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "resnet34": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "resnet50": ({"num_classes": 10}, (3, 32, 32), torch.float32),
    "resnet20": ({}, (3, 16, 16), torch.float32),
    "resnet56": ({}, (3, 16, 16), torch.float32),
    "mobilenet_v1": ({"width_multiplier": 0.25, "num_classes": 10}, (3, 64, 64), torch.float32),
    "tdnn": ({}, (16, 15), torch.float32),
    "tcn": ({"num_channels": (4, 4)}, (1, 32), torch.float32),
    "textcnn": ({"vocab_size": 50, "embed_dim": 8}, (12,), torch.long),
    "c3d": ({"variant": "small"}, None, torch.float32),  # type: ignore[dict-item]  # input from metadata
    "dqn": ({}, (4, 84, 84), torch.float32),
    "unet": ({"base_width": 2, "depth": 2, "padding": "same"}, (1, 32, 32), torch.float32),
    "fcn": ({"num_classes": 3, "width_divisor": 16, "hidden_features": 8}, (3, 64, 64), torch.float32),
    "segnet": ({"num_classes": 3, "depth": 2, "width_divisor": 16}, (3, 16, 16), torch.float32),
    "dcgan_generator": ({"base_width": 2}, (100, 1, 1), torch.float32),
    "airbench_fmnist": ({}, (1, 28, 28), torch.float32),
    "faster_rcnn": ({"num_classes": 3, "representation": 16}, (3, 32, 32), torch.float32),
    "faster_rcnn_spp": ({"num_classes": 3, "representation": 16}, (3, 32, 32), torch.float32),
}

REQUIRED_META = ("paper", "year", "input_size", "num_params", "task")


def _params(model: nn.Module) -> int:
    # Published counts include frozen parameters (airbench's whitening conv and BN weights).
    return sum(p.numel() for p in model.parameters())


def _first(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def test_every_registered_model_has_a_small_setting() -> None:
    missing = sorted(set(list_models()) - set(SMALL))
    assert not missing, f"add a small setting for {missing} to SMALL in this file"


@pytest.mark.parametrize("name", list_models())
def test_metadata_and_published_parameter_count(name: str) -> None:
    info = model_info(name)
    for key in REQUIRED_META:
        assert info.get(key) is not None, f"{name}: metadata lacks {key}"
    assert 1989 <= info["year"] <= 2026
    with torch.device("meta"):
        model = create_model(name)
    assert _params(model) == info["num_params"]
    assert tuple(model.input_shape) == tuple(info["input_size"])


@pytest.mark.parametrize("name", list_models())
def test_small_forward_backward_and_feature_head_split(name: str) -> None:
    kwargs, shape, dtype = SMALL[name]
    torch.manual_seed(0)
    model = create_model(name, **kwargs)
    if shape is None:
        shape = tuple(model.input_shape)
    if dtype == torch.long:
        x = torch.randint(0, kwargs["vocab_size"], (2, *shape))
    else:
        x = torch.rand(2, *shape)
    init: Callable[[torch.Tensor], None] | None = getattr(model, "init_from_data", None)
    if init is not None:
        init(torch.randn(64, *shape))
    model.train()
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)  # GoogLeNet's auxiliary heads train too
    sum(o.float().square().mean() for o in outs).backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: no finite gradient for {pname}"
    model.eval()
    with torch.no_grad():
        a, b = model(x), model(x)
        split = model.forward_head(model.forward_features(x))
    assert torch.equal(a, b), f"{name}: eval mode is not deterministic"
    assert torch.allclose(split, a, atol=1e-6), f"{name}: forward_head(forward_features(x)) != forward(x)"
